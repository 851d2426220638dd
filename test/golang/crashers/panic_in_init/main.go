// A plugin library that dies while it loads: its package init panics, which no recover in the
// SDK can catch (Go prints the panic and its traceback, then exits 2). In-process this would take
// the proxy down; the sandbox tests use it to show the process dying alone and its output kept.
package main

import (
	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
	_ "github.com/envoyproxy/envoy/contrib/golang/filters/http/source/go/pkg/http"
)

func init() {
	api.LogInfo("crasher loading")
	panic("crash on load")
}

func main() {}
