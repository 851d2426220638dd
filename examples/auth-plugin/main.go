// An example Go plugin for corral, written against Envoy's Go SDK exactly as for Envoy's Golang
// filter (nothing corral-specific): bearer-token authentication for requests under a path prefix.
//
//	plugin_config (xds.type.v3.TypedStruct value):
//	  protected_prefix: /secure        # requests under it need a token (default "/")
//	  tokens: { "<token>": "<user>" }   # accepted bearer tokens and the user each one names
//
// A request without a valid "Authorization: Bearer <token>" gets 401 with a WWW-Authenticate
// header; an accepted one goes upstream with "x-auth-user: <user>". Every response the plugin saw
// gets "x-auth-plugin: corral-example". The counter example_auth.denied is on /stats.
//
// Build: go build -buildmode=c-shared -o auth.so .
package main

import (
	"fmt"
	"strings"

	xds "github.com/cncf/xds/go/xds/type/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
	"github.com/envoyproxy/envoy/contrib/golang/filters/http/source/go/pkg/http"
)

const pluginName = "token-auth"

type config struct {
	prefix string
	tokens map[string]string
	denied api.CounterMetric
}

type parser struct{}

func (parser) Parse(any *anypb.Any, callbacks api.ConfigCallbackHandler) (interface{}, error) {
	ts := &xds.TypedStruct{}
	if err := any.UnmarshalTo(ts); err != nil {
		return nil, fmt.Errorf("token-auth wants an xds.type.v3.TypedStruct config: %w", err)
	}
	c := &config{prefix: "/", tokens: map[string]string{}}
	fields := ts.GetValue().GetFields()
	if p, ok := fields["protected_prefix"]; ok {
		c.prefix = p.GetStringValue()
	}
	for token, user := range fields["tokens"].GetStructValue().GetFields() {
		c.tokens[token] = user.GetStringValue()
	}
	if len(c.tokens) == 0 {
		return nil, fmt.Errorf("token-auth: tokens must name at least one token")
	}
	if callbacks != nil {
		c.denied = callbacks.DefineCounterMetric("example_auth.denied")
	}
	return c, nil
}

func (parser) Merge(parent, child interface{}) interface{} { return child }

type filter struct {
	api.PassThroughStreamFilter
	c         *config
	callbacks api.FilterCallbackHandler
}

func (f *filter) DecodeHeaders(h api.RequestHeaderMap, endStream bool) api.StatusType {
	if !strings.HasPrefix(h.Path(), f.c.prefix) {
		return api.Continue
	}
	auth, _ := h.Get("authorization")
	token, found := strings.CutPrefix(auth, "Bearer ")
	user, ok := f.c.tokens[token]
	if !found || !ok {
		if f.c.denied != nil {
			f.c.denied.Increment(1)
		}
		f.callbacks.DecoderFilterCallbacks().SendLocalReply(401, "unauthorized\n",
			map[string][]string{"www-authenticate": {`Bearer realm="corral"`}}, 0, "token_auth_denied")
		return api.LocalReply
	}
	h.Set("x-auth-user", user)
	return api.Continue
}

func (f *filter) EncodeHeaders(h api.ResponseHeaderMap, endStream bool) api.StatusType {
	h.Set("x-auth-plugin", "corral-example")
	return api.Continue
}

func init() {
	http.RegisterHttpFilterFactoryAndConfigParser(pluginName,
		func(c interface{}, callbacks api.FilterCallbackHandler) api.StreamFilter {
			return &filter{c: c.(*config), callbacks: callbacks}
		}, parser{})
}

func main() {}
