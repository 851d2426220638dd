// Test plugins for corral's Golang filter, written against Envoy's Go SDK (pinned v1.39.0),
// built as one c-shared library by the CMake helper corral_go_plugin(). Each plugin is
// registered under its own name; tests select one by plugin_name.
package main

import (
	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
	"github.com/envoyproxy/envoy/contrib/golang/filters/http/source/go/pkg/http"
)

// noop passes every phase through unchanged.
type noop struct {
	api.PassThroughStreamFilter
}

func init() {
	// Logged while the host dlopens the library: the host's log functions must work by then.
	api.LogInfo("corral test plugins loaded")
	http.RegisterHttpFilterFactoryAndConfigParser("noop",
		func(config interface{}, callbacks api.FilterCallbackHandler) api.StreamFilter {
			return &noop{}
		}, http.NullParser)
}

func main() {}
