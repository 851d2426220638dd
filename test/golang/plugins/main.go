// Test plugins for corral's Golang filter, written against Envoy's Go SDK (pinned v1.39.0),
// built as one c-shared library by the CMake helper corral_go_plugin(). Each plugin is
// registered under its own name; tests select one by plugin_name and steer it with request
// headers (x-test-*). One plugin per behaviour of the ABI; see test/integration/test_golang.py.
package main

import (
	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
	"github.com/envoyproxy/envoy/contrib/golang/filters/http/source/go/pkg/http"
)

// noop passes every phase through unchanged.
type noop struct {
	api.PassThroughStreamFilter
}

func register(name string, p *parser, f func(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter) {
	http.RegisterHttpFilterFactoryAndConfigParser(name,
		func(config interface{}, callbacks api.FilterCallbackHandler) api.StreamFilter {
			c, _ := config.(*testConfig)
			return f(c, callbacks)
		}, p)
}

func init() {
	// Logged while the host dlopens the library: the host's log functions must work by then.
	api.LogInfo("corral test plugins loaded")
	http.RegisterHttpFilterFactoryAndConfigParser("noop",
		func(config interface{}, callbacks api.FilterCallbackHandler) api.StreamFilter {
			return &noop{}
		}, http.NullParser)
	register("headers", &parser{}, newHeaders)
	register("body", &parser{}, newBody)
	register("async", &parser{}, newAsync)
	register("localreply", &parser{}, newLocalReply)
	register("panic", &parser{}, newPanic)
	register("info", &parser{}, newInfo)
	register("metrics", &parser{counters: []string{"corral_test.requests", "corral_test.on_log",
		"corral_test.on_stream_complete", "corral_test.on_destroy"},
		gauges: []string{"corral_test.inflight"}}, newMetrics)
	register("trailers", &parser{}, newTrailers)
	register("routing", &parser{}, newRouting)
	register("badstatus", &parser{}, newBadStatus)
	register("gcstress", &parser{}, newGCStress)
	register("basic-auth", &parser{}, newBasicAuth)
	registerCrashers()
}

func main() {}
