package main

import (
	"encoding/base64"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

// ---- headers: header get/set/add/remove in both directions, and the merged config ----

type headersFilter struct {
	api.PassThroughStreamFilter
	c  *testConfig
	cb api.FilterCallbackHandler
	// seen in DecodeHeaders, reported in EncodeHeaders
	method, path, host, all string
}

func newHeaders(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
	return &headersFilter{c: c, cb: cb}
}

func (f *headersFilter) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	f.method, f.path, f.host = h.Method(), h.Path(), h.Host()
	v, _ := h.Get("x-test-in")
	f.all = fmt.Sprintf("%d", len(h.Values("x-test-multi")))
	if _, bad := h.Get("x-test-bad-value"); bad {
		h.Set("x-split", "a\r\nx-injected: 1") // refused by the host: CR/LF would split the message
	}
	h.Set("x-test-added-by-plugin", "yes:"+v)
	h.Add("x-test-multi", "from-plugin")
	h.Del("x-test-remove")
	return api.Continue
}

func (f *headersFilter) EncodeHeaders(h api.ResponseHeaderMap, end bool) api.StatusType {
	st, _ := h.Status()
	h.Set("x-test-status-seen", strconv.Itoa(st))
	h.Set("x-test-request", f.method+" "+f.host+" "+f.path+" multi="+f.all)
	h.Set("x-test-config", f.c.get("greeting"))
	h.Set("x-test-chain", f.c.get("chain"))
	h.Set("x-test-type-url", f.c.get("type_url"))
	h.Set("x-test-string", f.c.get("string"))
	h.Del("x-upstream-remove")
	return api.Continue
}

// ---- body: StopAndBuffer / StopAndBufferWatermark / StopNoBuffer, body rewrite ----

type bodyFilter struct {
	api.PassThroughStreamFilter
	mode    string
	reqHdr  api.RequestHeaderMap
	respHdr api.ResponseHeaderMap
	chunks  int
	total   int
	kept    []byte
	respMod string
}

func newBody(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter { return &bodyFilter{} }

func (f *bodyFilter) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	f.mode, _ = h.Get("x-test-body-mode")
	f.respMod, _ = h.Get("x-test-resp-body")
	f.reqHdr = h
	if end {
		return api.Continue
	}
	switch f.mode {
	case "buffer":
		return api.StopAndBuffer
	case "watermark":
		return api.StopAndBufferWatermark
	}
	return api.Continue
}

func (f *bodyFilter) DecodeData(b api.BufferInstance, end bool) api.StatusType {
	f.chunks++
	switch f.mode {
	case "buffer":
		if !end {
			return api.StopAndBuffer
		}
		body := strings.ToUpper(b.String()) + "|seen-by-plugin"
		b.SetString(body)
		f.reqHdr.Set("content-length", strconv.Itoa(len(body)))
		return api.Continue
	case "watermark":
		// Each call sees only the new chunk; the host keeps the earlier ones.
		f.total += b.Len()
		if !end {
			return api.StopAndBufferWatermark
		}
		b.AppendString("|watermark")
		f.reqHdr.Set("content-length", strconv.Itoa(f.total+len("|watermark")))
		return api.Continue
	case "nobuffer":
		// Keep every chunk ourselves, hand the whole lot on at the end, reversed.
		f.kept = append(f.kept, b.Bytes()...)
		if !end {
			return api.StopNoBuffer
		}
		out := []byte(string(f.kept))
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		b.Set(out)
		return api.Continue
	case "drain":
		b.Drain(b.Len())
		b.AppendString("x")
		return api.Continue
	}
	return api.Continue
}

func (f *bodyFilter) EncodeHeaders(h api.ResponseHeaderMap, end bool) api.StatusType {
	f.respHdr = h
	h.Set("x-test-decode-chunks", strconv.Itoa(f.chunks))
	if f.respMod == "" || end {
		return api.Continue
	}
	return api.StopAndBuffer
}

func (f *bodyFilter) EncodeData(b api.BufferInstance, end bool) api.StatusType {
	if f.respMod == "" {
		return api.Continue
	}
	if !end {
		return api.StopAndBuffer
	}
	switch f.respMod {
	case "wrap":
		b.PrependString("[")
		b.AppendString("]")
	case "replace":
		b.SetString("replaced by plugin")
	}
	f.respHdr.Set("content-length", strconv.Itoa(b.Len()))
	return api.Continue
}

// ---- async: phases finished later from a goroutine ----

type asyncFilter struct {
	api.PassThroughStreamFilter
	cb       api.FilterCallbackHandler
	mode     string
	injected bool
}

func newAsync(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
	return &asyncFilter{cb: cb}
}

func (f *asyncFilter) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	f.mode, _ = h.Get("x-test-async")
	go func() {
		defer f.cb.DecoderFilterCallbacks().RecoverPanic()
		time.Sleep(5 * time.Millisecond)
		// Off the worker thread: these calls are posted, and getters yield.
		h.Set("x-test-async-header", "set-from-goroutine")
		if p, err := f.cb.GetProperty("request.path"); err == nil {
			h.Set("x-test-async-path", p)
		}
		switch f.mode {
		case "reply":
			f.cb.DecoderFilterCallbacks().SendLocalReply(202, "async reply",
				map[string][]string{"x-test-async": {"reply"}}, 0, "async_reply")
		case "panic":
			panic("panic in a goroutine, recovered by the plugin")
		default:
			f.cb.DecoderFilterCallbacks().Continue(api.Continue)
		}
	}()
	return api.Running
}

func (f *asyncFilter) DecodeData(b api.BufferInstance, end bool) api.StatusType {
	if f.mode != "data" {
		return api.Continue
	}
	go func() {
		defer f.cb.DecoderFilterCallbacks().RecoverPanic()
		time.Sleep(2 * time.Millisecond)
		f.cb.DecoderFilterCallbacks().Continue(api.Continue)
	}()
	return api.Running
}

func (f *asyncFilter) EncodeData(b api.BufferInstance, end bool) api.StatusType {
	if f.mode == "slow-encode" && !f.injected {
		// Busy for a while on the first response chunk: the rest of the response must wait
		// upstream (the host pauses it) rather than pile up in the proxy.
		f.injected = true
		go func() {
			defer f.cb.EncoderFilterCallbacks().RecoverPanic()
			time.Sleep(300 * time.Millisecond)
			f.cb.EncoderFilterCallbacks().Continue(api.Continue)
		}()
		return api.Running
	}
	if f.mode != "inject" || f.injected {
		return api.Continue
	}
	f.injected = true
	go func() {
		defer f.cb.EncoderFilterCallbacks().RecoverPanic()
		f.cb.EncoderFilterCallbacks().InjectData([]byte("injected-1|"))
		f.cb.EncoderFilterCallbacks().InjectData([]byte("injected-2|"))
		f.cb.EncoderFilterCallbacks().Continue(api.Continue)
	}()
	return api.Running
}

func (f *asyncFilter) EncodeHeaders(h api.ResponseHeaderMap, end bool) api.StatusType {
	if f.mode == "inject" {
		h.Del("content-length") // the body grows
	}
	return api.Continue
}

// ---- localreply: a local reply from the phase named by x-test-reply-phase ----

type localReplyFilter struct {
	api.PassThroughStreamFilter
	cb    api.FilterCallbackHandler
	phase string
}

func newLocalReply(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
	return &localReplyFilter{cb: cb}
}

func (f *localReplyFilter) reply(cb api.FilterProcessCallbacks) api.StatusType {
	cb.SendLocalReply(403, "denied in "+f.phase, map[string][]string{"x-test-reply": {f.phase},
		"content-type": {"text/x-test"}}, 0, "denied_by_plugin")
	return api.LocalReply
}

func (f *localReplyFilter) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	f.phase, _ = h.Get("x-test-reply-phase")
	if f.phase == "decode-headers" {
		return f.reply(f.cb.DecoderFilterCallbacks())
	}
	return api.Continue
}

func (f *localReplyFilter) DecodeData(b api.BufferInstance, end bool) api.StatusType {
	if f.phase == "decode-data" {
		return f.reply(f.cb.DecoderFilterCallbacks())
	}
	return api.Continue
}

func (f *localReplyFilter) DecodeTrailers(t api.RequestTrailerMap) api.StatusType {
	if f.phase == "decode-trailers" {
		return f.reply(f.cb.DecoderFilterCallbacks())
	}
	return api.Continue
}

func (f *localReplyFilter) EncodeHeaders(h api.ResponseHeaderMap, end bool) api.StatusType {
	if f.phase == "encode-headers" {
		return f.reply(f.cb.EncoderFilterCallbacks())
	}
	if f.phase == "encode-data" && !end {
		return api.StopAndBuffer
	}
	return api.Continue
}

func (f *localReplyFilter) EncodeData(b api.BufferInstance, end bool) api.StatusType {
	if f.phase == "encode-data" {
		if !end {
			return api.StopAndBuffer
		}
		return f.reply(f.cb.EncoderFilterCallbacks())
	}
	return api.Continue
}

// ---- panic: a panic in the phase named by x-test-panic-phase ----

type panicFilter struct {
	api.PassThroughStreamFilter
	phase string
}

func newPanic(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter { return &panicFilter{} }

func (f *panicFilter) maybe(phase string) {
	if f.phase == phase {
		panic("test panic in " + phase)
	}
}

func (f *panicFilter) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	f.phase, _ = h.Get("x-test-panic-phase")
	f.maybe("decode-headers")
	return api.Continue
}
func (f *panicFilter) DecodeData(b api.BufferInstance, end bool) api.StatusType {
	f.maybe("decode-data")
	return api.Continue
}
func (f *panicFilter) DecodeTrailers(t api.RequestTrailerMap) api.StatusType {
	f.maybe("decode-trailers")
	return api.Continue
}
func (f *panicFilter) EncodeHeaders(h api.ResponseHeaderMap, end bool) api.StatusType {
	f.maybe("encode-headers")
	if f.phase == "encode-data" && !end {
		return api.StopAndBuffer
	}
	return api.Continue
}
func (f *panicFilter) EncodeData(b api.BufferInstance, end bool) api.StatusType {
	if f.phase == "encode-data" && !end {
		return api.StopAndBuffer
	}
	f.maybe("encode-data")
	return api.Continue
}
func (f *panicFilter) EncodeTrailers(t api.ResponseTrailerMap) api.StatusType {
	f.maybe("encode-trailers")
	return api.Continue
}
func (f *panicFilter) OnLog(api.RequestHeaderMap, api.RequestTrailerMap, api.ResponseHeaderMap, api.ResponseTrailerMap) {
	f.maybe("on-log")
}

// ---- info: stream info, properties, dynamic metadata and filter state ----

type infoFilter struct {
	api.PassThroughStreamFilter
	cb        api.FilterCallbackHandler
	props     []string
	offThread bool
}

func newInfo(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
	return &infoFilter{cb: cb}
}

var infoProperties = []string{"request.path", "request.url_path", "request.query", "request.host",
	"request.method", "request.scheme", "request.protocol", "request.id", "request.useragent",
	"source.address", "destination.port", "xds.route_name", "xds.virtual_host_name", "no.such.property"}

func (f *infoFilter) collect() {
	si := f.cb.StreamInfo()
	si.DynamicMetadata().Set("corral.test", "greeting", "hello")
	si.DynamicMetadata().Set("corral.test", "n", 42)
	si.FilterState().SetString("corral.test.state", "state-value", api.StateTypeReadOnly,
		api.LifeSpanRequest, api.SharedWithUpstreamConnection)
	for _, p := range infoProperties {
		v, err := f.cb.GetProperty(p)
		if err != nil {
			v = "error:" + err.Error()
		}
		f.props = append(f.props, p+"="+v)
	}
}

func (f *infoFilter) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	if _, ok := h.Get("x-test-offthread"); ok {
		f.offThread = true
		go func() {
			defer f.cb.DecoderFilterCallbacks().RecoverPanic()
			f.collect()
			f.cb.DecoderFilterCallbacks().Continue(api.Continue)
		}()
		return api.Running
	}
	f.collect()
	return api.Continue
}

func (f *infoFilter) EncodeHeaders(h api.ResponseHeaderMap, end bool) api.StatusType {
	si := f.cb.StreamInfo()
	md := si.DynamicMetadata().Get("corral.test")
	h.Set("x-test-metadata", fmt.Sprintf("%v/%v", md["greeting"], md["n"]))
	h.Set("x-test-filter-state", si.FilterState().GetString("corral.test.state"))
	h.Set("x-test-properties", strings.Join(f.props, ";"))
	proto, _ := si.Protocol()
	code, _ := si.ResponseCode()
	cluster, _ := si.UpstreamClusterName()
	upstream, _ := si.UpstreamRemoteAddress()
	h.Set("x-test-stream-info", fmt.Sprintf("route=%s proto=%s code=%d cluster=%s upstream=%t remote=%t local=%t",
		si.GetRouteName(), proto, code, cluster, upstream != "",
		si.DownstreamRemoteAddress() != "", si.DownstreamLocalAddress() != ""))
	return api.Continue
}

// ---- metrics: plugin-defined counters and gauges, and the log phases ----

type metricsFilter struct {
	api.PassThroughStreamFilter
	c *testConfig
}

func newMetrics(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
	return &metricsFilter{c: c}
}

func (f *metricsFilter) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	f.c.counters["corral_test.requests"].Increment(1)
	f.c.counters["corral_test.requests"].Increment(-5) // ignored: counters only go up
	f.c.gauges["corral_test.inflight"].Increment(1)
	return api.Continue
}

func (f *metricsFilter) EncodeHeaders(h api.ResponseHeaderMap, end bool) api.StatusType {
	h.Set("x-test-requests", strconv.FormatUint(f.c.counters["corral_test.requests"].Get(), 10))
	return api.Continue
}

func (f *metricsFilter) OnStreamComplete() {
	f.c.counters["corral_test.on_stream_complete"].Increment(1)
}
func (f *metricsFilter) OnLog(api.RequestHeaderMap, api.RequestTrailerMap, api.ResponseHeaderMap, api.ResponseTrailerMap) {
	f.c.counters["corral_test.on_log"].Increment(1)
}
func (f *metricsFilter) OnDestroy(api.DestroyReason) {
	f.c.counters["corral_test.on_destroy"].Increment(1)
	f.c.gauges["corral_test.inflight"].Increment(-1)
}

// ---- trailers ----

type trailersFilter struct {
	api.PassThroughStreamFilter
	cb api.FilterCallbackHandler
}

func newTrailers(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
	return &trailersFilter{cb: cb}
}

func (f *trailersFilter) DecodeTrailers(t api.RequestTrailerMap) api.StatusType {
	if _, ok := t.Get("x-test-add-data"); ok {
		// AddData in the trailers phase, streaming: the bytes go on before the trailers.
		f.cb.DecoderFilterCallbacks().AddData([]byte("|added-by-plugin"), true)
	}
	v, _ := t.Get("x-test-req-trailer")
	t.Set("x-test-req-trailer", "seen:"+v)
	t.Add("x-test-added-trailer", "by-plugin")
	return api.Continue
}

func (f *trailersFilter) EncodeTrailers(t api.ResponseTrailerMap) api.StatusType {
	v, _ := t.Get("x-upstream-trailer")
	t.Set("x-test-resp-trailer", "seen:"+v)
	t.Del("x-upstream-remove")
	return api.Continue
}

// ---- routing: re-route after a path change, upstream host override ----

type routingFilter struct {
	api.PassThroughStreamFilter
	cb api.FilterCallbackHandler
}

func newRouting(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
	return &routingFilter{cb: cb}
}

func (f *routingFilter) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	if p, ok := h.Get("x-test-new-path"); ok {
		h.SetPath(p)
		f.cb.ClearRouteCache()
	}
	if host, ok := h.Get("x-test-override-host"); ok {
		if err := f.cb.DecoderFilterCallbacks().SetUpstreamOverrideHost(host, true); err != nil {
			f.cb.DecoderFilterCallbacks().SendLocalReply(400, "bad override: "+err.Error(), nil, 0, "bad_override")
			return api.LocalReply
		}
	}
	return api.Continue
}

// ---- badstatus: returns a status the ABI does not define ----

type badStatusFilter struct {
	api.PassThroughStreamFilter
}

func newBadStatus(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
	return &badStatusFilter{}
}

func (f *badStatusFilter) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	return api.StatusType(42)
}

// ---- gcstress: allocates heavily and runs the GC while requests run ----

var gcRuns atomic.Int64

type gcStressFilter struct {
	api.PassThroughStreamFilter
	garbage [][]byte
}

func newGCStress(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
	return &gcStressFilter{}
}

func (f *gcStressFilter) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	for i := 0; i < 64; i++ {
		f.garbage = append(f.garbage, make([]byte, 1024+i*16))
	}
	if _, ok := h.Get("x-test-gc"); ok {
		runtime.GC()
		gcRuns.Add(1)
	}
	h.Set("x-test-garbage", strconv.Itoa(len(f.garbage)))
	return api.Continue
}

func (f *gcStressFilter) EncodeHeaders(h api.ResponseHeaderMap, end bool) api.StatusType {
	h.Set("x-test-gc-runs", strconv.FormatInt(gcRuns.Load(), 10))
	return api.Continue
}

// ---- basic-auth: HTTP Basic authentication against the configured user and password ----
// (the "basic-auth Go filter" of bench/golang_filter)

type basicAuthFilter struct {
	api.PassThroughStreamFilter
	c  *testConfig
	cb api.FilterCallbackHandler
}

func newBasicAuth(c *testConfig, cb api.FilterCallbackHandler) api.StreamFilter {
	return &basicAuthFilter{c: c, cb: cb}
}

func (f *basicAuthFilter) DecodeHeaders(h api.RequestHeaderMap, end bool) api.StatusType {
	auth, _ := h.Get("authorization")
	if enc, ok := strings.CutPrefix(auth, "Basic "); ok {
		if raw, err := base64.StdEncoding.DecodeString(enc); err == nil {
			user, pass, _ := strings.Cut(string(raw), ":")
			if user == f.c.get("user") && pass == f.c.get("password") {
				h.Del("authorization")
				return api.Continue
			}
		}
	}
	f.cb.DecoderFilterCallbacks().SendLocalReply(401, "unauthorized",
		map[string][]string{"www-authenticate": {`Basic realm="corral"`}}, 0, "basic_auth_denied")
	return api.LocalReply
}
