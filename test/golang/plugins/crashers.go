package main

// The sandbox failure catalogue (issue 4): one plugin per way a Go plugin can take down the
// process it runs in. Each passes requests through unchanged unless the request carries
// `x-crash: 1`, so the test can show that the *next* request to the same plugin works (on a
// rebuilt runtime). test/integration/test_sandbox_failures.py runs them in sandbox mode.

/*
#include <stddef.h>
static void corral_test_segv(void) {
	volatile int* p = NULL;
	*p = 42;
}
*/
import "C"

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
	"github.com/envoyproxy/envoy/contrib/golang/filters/http/source/go/pkg/http"
)

// crasher runs `crash` in DecodeHeaders when the request asks for it.
type crasher struct {
	api.PassThroughStreamFilter
	cb    api.FilterCallbackHandler
	crash func(f *crasher) api.StatusType
}

func (f *crasher) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	if v, _ := h.Get("x-crash"); v != "1" {
		return api.Continue
	}
	return f.crash(f)
}

func registerCrasher(name string, crash func(f *crasher) api.StatusType) {
	register(name, &parser{}, func(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
		return &crasher{cb: cb, crash: crash}
	})
}

var sink [][]byte // keeps allocations alive

func recurse(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	return recurse(n+1) + int(pad[0])
}

// localError answers the request with the error the plugin got (for the denied operations).
func localError(f *crasher, what string, err error) api.StatusType {
	if err == nil {
		f.cb.DecoderFilterCallbacks().SendLocalReply(200, what+": allowed", nil, 0, "")
		return api.LocalReply
	}
	f.cb.DecoderFilterCallbacks().SendLocalReply(500, what+": "+err.Error(), nil, 0, "denied")
	return api.LocalReply
}

// panicParser panics in Parse when the config says so.
type panicParser struct{ parser }

func (p *panicParser) Parse(any *anypb.Any, cb api.ConfigCallbackHandler) (interface{}, error) {
	if any != nil && strings.Contains(string(any.GetValue()), "panic_in_parse") {
		panic("panic in Parse")
	}
	return p.parser.Parse(any, cb)
}

func registerCrashers() {
	registerCrasher("crash-goroutine-panic", func(f *crasher) api.StatusType {
		go func() {
			time.Sleep(10 * time.Millisecond)
			panic("panic in a plugin goroutine")
		}()
		return api.Running
	})
	registerCrasher("crash-map-writes", func(f *crasher) api.StatusType {
		m := map[int]int{}
		for i := 0; i < 4; i++ {
			go func() {
				for j := 0; ; j++ {
					m[j%1024] = j
				}
			}()
		}
		return api.Running
	})
	registerCrasher("crash-nil-go", func(f *crasher) api.StatusType {
		var fn func()
		go fn()
		return api.Continue
	})
	registerCrasher("crash-recursion", func(f *crasher) api.StatusType {
		debug.SetMaxStack(64 << 20) // reach the limit in milliseconds rather than at 1 GB
		return api.StatusType(recurse(0))
	})
	registerCrasher("crash-alloc", func(f *crasher) api.StatusType {
		for {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = byte(i)
			}
			sink = append(sink, b)
		}
	})
	registerCrasher("crash-deadlock", func(f *crasher) api.StatusType {
		block := make(chan struct{})
		<-block // nothing will ever send
		return api.Continue
	})
	registerCrasher("crash-spin", func(f *crasher) api.StatusType {
		for {
		}
	})
	registerCrasher("crash-exit", func(f *crasher) api.StatusType {
		os.Exit(3)
		return api.Continue
	})
	registerCrasher("crash-log-fatal", func(f *crasher) api.StatusType {
		log.Fatal("log.Fatal in a plugin")
		return api.Continue
	})
	registerCrasher("crash-segv", func(f *crasher) api.StatusType {
		C.corral_test_segv()
		return api.Continue
	})
	registerCrasher("crash-noisy", func(f *crasher) api.StatusType {
		line := strings.Repeat("x", 1000)
		for i := 0; i < 5000; i++ {
			fmt.Fprintln(os.Stdout, "noisy stdout", i, line)
			fmt.Fprintln(os.Stderr, "noisy stderr", i, line)
		}
		return api.Continue
	})
	registerCrasher("crash-exec", func(f *crasher) api.StatusType {
		return localError(f, "execve", exec.Command("/bin/true").Run())
	})
	registerCrasher("crash-proc-mem", func(f *crasher) api.StatusType {
		mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", os.Getppid()))
		if err == nil {
			buf := make([]byte, 16)
			_, err = mem.Read(buf)
			mem.Close()
		}
		return localError(f, "read of the proxy's memory", err)
	})
	http.RegisterHttpFilterFactoryAndConfigParser("crash-parse",
		func(config interface{}, callbacks api.FilterCallbackHandler) api.StreamFilter {
			return &noop{}
		}, &panicParser{})
	// The filter factory runs before the SDK's recover: a panic there is fatal in-process.
	register("crash-factory", &parser{}, func(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
		if name := cb.StreamInfo().GetRouteName(); name == "crash-factory" {
			panic("panic in the filter factory")
		}
		return &noop{}
	})
}
