// A plugin library that allocates far past any sane limit while it loads (2 GiB, touched). In a
// sandbox with a data limit the Go runtime runs out of memory and the process dies alone.
package main

import (
	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
	_ "github.com/envoyproxy/envoy/contrib/golang/filters/http/source/go/pkg/http"
)

var hoard [][]byte

func init() {
	api.LogInfo("allocating")
	for i := 0; i < 2048; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		hoard = append(hoard, b)
	}
}

func main() {}
