"""The Golang filter: unmodified Envoy Go SDK plugins (test/golang/plugins) behind corral.

(A sandboxed plugin's log lines reach corral's log through its output pipe, a moment after the
response: tests wait for them.)

Every test takes the `isolation` fixture, so the same suite runs in each isolation mode corral
offers: in_process and sandbox."""

import http.client
import json
import os
import socket
import threading
import time

import pytest

from conftest import (ROUTER, bootstrap, cluster, http_request, listener, raw_exchange,
                      raw_json_body, status_of, wait_until)

PLUGINS_SO = os.environ.get("CORRAL_TEST_PLUGINS_SO") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "source", "golang", "corral_test_plugins.so")
GOLANG_TYPE = "type.googleapis.com/envoy.extensions.filters.http.golang.v3alpha.Config"
PER_ROUTE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.golang.v3alpha.ConfigsPerRoute"
TYPED_STRUCT = "type.googleapis.com/xds.type.v3.TypedStruct"
PANIC_BODY = b"error happened in filter\r\n"


@pytest.fixture(params=["in_process", "sandbox"])
def isolation(request):
    return request.param


def golang_filter(plugin, config=None, library_id="test", path=None, name="envoy.filters.http.golang"):
    tc = {"@type": GOLANG_TYPE, "library_id": library_id, "library_path": path or PLUGINS_SO,
          "plugin_name": plugin}
    if config is not None:
        tc["plugin_config"] = config
    return {"name": name, "typed_config": tc}


def typed_struct(**values):
    return {"@type": TYPED_STRUCT, "type_url": "type.googleapis.com/corral.test.Config",
            "value": values}


def golang_config(isolation, filters, upstream_port, routes=None, virtual_hosts=None,
                  libraries=("test",)):
    routes = routes or [{"match": {"prefix": "/"}, "route": {"cluster": "up", "timeout": "5s"}}]
    cfg = bootstrap([listener("ingress", routes, http_filters=filters + [ROUTER],
                              virtual_hosts=virtual_hosts)],
                    [cluster("up", [upstream_port])])
    cfg["corral"] = {"golang_libraries": {lib: {"isolation": isolation} for lib in libraries}}
    return cfg


def request(port, path="/echo", headers=None, method="GET", body=None, conn=None):
    return http_request(port, path, headers=headers, method=method, body=body, conn=conn)


def echo(body):
    return json.loads(body)


def hdr(info, name):
    """A request header as the fake upstream saw it (all values)."""
    return [v for k, v in info["headers"] if k.lower() == name]


# ---- loading and config ----

def test_noop_plugin_passes_traffic(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("noop")], upstream.port))
    r, body = request(c.port(), "/echo?a=1")
    assert r.status == 200 and echo(body)["path"] == "/echo?a=1"
    assert wait_until(lambda: "corral test plugins loaded" in c.stderr())  # the plugin's init log reached our log


def test_headers_and_typed_struct_config(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("headers", typed_struct(greeting="hi"))],
                                   upstream.port))
    r, body = request(c.port(), "/echo/x", headers={"x-test-in": "v1", "x-test-remove": "gone",
                                                    "x-test-multi": "a", "Host": "example.com"})
    assert r.status == 200
    info = echo(body)
    assert hdr(info, "x-test-added-by-plugin") == ["yes:v1"]
    assert hdr(info, "x-test-multi") == ["a", "from-plugin"]
    assert hdr(info, "x-test-remove") == []
    assert r.getheader("x-test-request") == "GET example.com /echo/x multi=1"
    assert r.getheader("x-test-status-seen") == "200"
    assert r.getheader("x-test-config") == "hi"
    assert r.getheader("x-test-type-url") == "type.googleapis.com/corral.test.Config"


def test_header_injection_from_a_plugin_is_refused(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("headers")], upstream.port))
    r, data = request(c.port(), headers={"x-test-bad-value": "1"})
    assert r.status == 500 and data == PANIC_BODY
    assert len(upstream.server.requests) == 0  # nothing reached the upstream
    assert wait_until(lambda: "set an invalid header field" in c.stderr())


@pytest.mark.parametrize("config,header,expected", [
    ({"@type": "type.googleapis.com/google.protobuf.Struct", "value": {"greeting": "from-struct"}},
     "x-test-config", "from-struct"),
    ({"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "plain"},
     "x-test-string", "plain"),
    ({"@type": "type.googleapis.com/udpa.type.v1.TypedStruct", "value": {"greeting": "udpa"}},
     "x-test-config", "udpa"),
])
def test_plugin_config_any_types(start_corral, upstream, isolation, config, header, expected):
    c = start_corral(golang_config(isolation, [golang_filter("headers", config)], upstream.port))
    r, _ = request(c.port())
    assert r.getheader(header) == expected


def test_per_route_config_merge(start_corral, upstream, isolation):
    per = lambda chain, **kv: {"@type": PER_ROUTE_TYPE, "plugins_config": {
        "headers": {"config": typed_struct(chain=chain, **kv)}}}
    vhosts = [{"name": "v", "domains": ["*"],
               "typed_per_filter_config": {"envoy.filters.http.golang": per("vhost", greeting="vh")},
               "routes": [
                   {"match": {"prefix": "/route"}, "route": {"cluster": "up"},
                    "typed_per_filter_config": {"envoy.filters.http.golang": per("route")}},
                   {"match": {"prefix": "/"}, "route": {"cluster": "up"}}]}]
    c = start_corral(golang_config(isolation, [golang_filter("headers", typed_struct(chain="filter", greeting="f"))],
                                   upstream.port, virtual_hosts=vhosts))
    for _ in range(3):  # the merged config is cached: same answer every time
        r, _ = request(c.port(), "/route/1")
        assert r.getheader("x-test-chain") == "filter>vhost>route"
        assert r.getheader("x-test-config") == "vh"
        r, _ = request(c.port(), "/other")
        assert r.getheader("x-test-chain") == "filter>vhost"


def test_unknown_plugin_name_passes_through(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("no-such-plugin")], upstream.port))
    r, body = request(c.port())
    assert r.status == 200 and echo(body)["method"] == "GET"
    assert wait_until(lambda: "plugin no-such-plugin not found, pass through by default" in c.stderr())


def test_two_filters_share_one_library(start_corral, upstream, isolation):
    filters = [golang_filter("headers", typed_struct(greeting="one"), name="first"),
               golang_filter("metrics", name="second")]
    c = start_corral(golang_config(isolation, filters, upstream.port))
    r, _ = request(c.port())
    assert r.status == 200 and r.getheader("x-test-config") == "one"
    assert r.getheader("x-test-requests") == "1"
    # Loaded once per process: the proxy's, or each sandbox process (1 + 1 warm spare by default).
    loads = 1 if isolation == "in_process" else 2
    assert wait_until(lambda: c.stderr().count("corral test plugins loaded") == loads)


@pytest.mark.parametrize("mutate,expected", [
    (lambda f: f["typed_config"].update(library_path="/nonexistent/plugin.so"), "library_path"),
    (lambda f: f["typed_config"].update(library_path="/etc/hostname"), "library_path"),
    (lambda f: f["typed_config"].pop("plugin_name"), "plugin_name"),
    (lambda f: f["typed_config"].update(plugin_config=typed_struct(fail="yes")), "plugin_config"),
    (lambda f: f["typed_config"].update(plugin_config={"@type": "type.googleapis.com/foo.Bar"}),
     "plugin_config.@type"),
    (lambda f: f["typed_config"].update(bogus=1), "typed_config.bogus"),
])
def test_bad_filter_config_is_a_startup_error(start_corral, upstream, isolation, mutate, expected, tmp_path):
    import subprocess
    import yaml
    from conftest import CORRAL_BIN
    f = golang_filter("headers")
    mutate(f)
    cfg = golang_config(isolation, [f], upstream.port)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    p = subprocess.run([CORRAL_BIN, "-c", str(path), "--mode", "validate"], capture_output=True,
                       timeout=30, text=True)
    assert p.returncode != 0
    assert "http_filters[0].typed_config" in p.stderr and expected in p.stderr, p.stderr
    assert "Sanitizer" not in p.stderr


def test_parse_error_carries_the_plugins_message(upstream, isolation, tmp_path):
    import subprocess
    import yaml
    from conftest import CORRAL_BIN
    cfg = golang_config(isolation, [golang_filter("headers", typed_struct(fail="yes"))], upstream.port)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    p = subprocess.run([CORRAL_BIN, "-c", str(path), "--mode", "validate"], capture_output=True,
                       timeout=30, text=True)
    assert p.returncode != 0
    assert ("plugin_config: plugin headers rejected its plugin_config: "
            "failed to parse golang plugin config: config says fail") in p.stderr, p.stderr


def test_not_a_go_plugin_is_a_startup_error(start_corral, upstream, isolation, tmp_path):
    import subprocess
    import yaml
    from conftest import CORRAL_BIN
    so = os.path.join(os.path.dirname(PLUGINS_SO), "libnot_a_go_plugin.so")
    cfg = golang_config(isolation, [golang_filter("headers", path=so)], upstream.port)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    p = subprocess.run([CORRAL_BIN, "-c", str(path), "--mode", "validate"], capture_output=True,
                       timeout=30, text=True)
    assert p.returncode != 0 and "library_path" in p.stderr and "envoyGo" in p.stderr, p.stderr


# ---- bodies ----

def test_stop_and_buffer_rewrites_request_body(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("body")], upstream.port))
    body = b"hello world " * 5000
    r, data = request(c.port(), "/echo", method="POST", body=body, headers={"x-test-body-mode": "buffer"})
    info = echo(data)
    assert r.status == 200
    assert info["body_len"] == len(body) + len("|seen-by-plugin")
    assert info["body_head"].startswith("HELLO WORLD")


def test_stop_and_buffer_chunked_request(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("body")], upstream.port))
    raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nx-test-body-mode: buffer\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
    out = raw_exchange(c.port(), raw)
    assert status_of(out) == 200
    info = raw_json_body(out)
    assert info["body_head"] == "ABCDEF|seen-by-plugin"


def test_watermark_and_nobuffer_modes(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("body")], upstream.port))
    r, data = request(c.port(), "/echo", method="POST", body=b"abc" * 1000,
                      headers={"x-test-body-mode": "watermark"})
    assert echo(data)["body_len"] == 3000 + len("|watermark")
    raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nx-test-body-mode: nobuffer\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
    out = raw_exchange(c.port(), raw)
    info = raw_json_body(out)
    assert info["body_head"] == "fedcba"


def test_response_body_rewrite(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("body")], upstream.port))
    r, data = request(c.port(), "/big?bytes=100000", headers={"x-test-resp-body": "wrap"})
    assert r.status == 200 and data == b"[" + b"x" * 100000 + b"]"
    r, data = request(c.port(), "/chunked?n=5&size=1000", headers={"x-test-resp-body": "replace"})
    assert r.status == 200 and data == b"replaced by plugin"


def test_buffer_limit_413_on_request_500_on_response(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("body")], upstream.port))
    r, _ = request(c.port(), "/echo", method="POST", body=b"x" * (2 * 1024 * 1024),
                   headers={"x-test-body-mode": "buffer"})
    assert r.status == 413
    r, _ = request(c.port(), "/big?bytes=3000000", headers={"x-test-resp-body": "wrap"})
    assert r.status == 500
    r, _ = request(c.port(), "/echo")  # the proxy goes on
    assert r.status == 200


# ---- async ----

def test_async_continue_from_goroutine(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("async")], upstream.port))
    r, data = request(c.port(), "/echo/async?q=1")
    info = echo(data)
    assert r.status == 200
    assert hdr(info, "x-test-async-header") == ["set-from-goroutine"]
    assert hdr(info, "x-test-async-path") == ["/echo/async?q=1"]  # GetProperty off-thread (yield)


def test_async_local_reply_and_data(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("async")], upstream.port))
    r, data = request(c.port(), "/echo", headers={"x-test-async": "reply"})
    assert r.status == 202 and data == b"async reply" and r.getheader("x-test-async") == "reply"
    r, data = request(c.port(), "/echo", method="POST", body=b"z" * 200000,
                      headers={"x-test-async": "data"})
    assert r.status == 200 and echo(data)["body_len"] == 200000


def test_body_arriving_while_go_works_on_headers(start_corral, upstream, isolation):
    # 3 MiB arrive while the goroutine sleeps: held (reading paused above the 1 MiB limit), then
    # handed on once Go continues.
    c = start_corral(golang_config(isolation, [golang_filter("async")], upstream.port))
    body = bytes(range(256)) * (3 * 4096)
    r, data = request(c.port(), "/echo", method="POST", body=body)
    assert r.status == 200
    info = echo(data)
    assert info["body_len"] == len(body)
    assert hdr(info, "x-test-async-header") == ["set-from-goroutine"]


def test_client_gone_while_go_is_running(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("async")], upstream.port))
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", c.port()))
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()  # gone before the goroutine continues: its Continue finds the stream destroyed
    time.sleep(0.2)
    r, data = request(c.port(), "/echo")
    assert r.status == 200 and hdr(echo(data), "x-test-async-header") == ["set-from-goroutine"]
    # The goroutines' late calls were refused (FilterIsDestroy), not answered with a panic reply.
    assert wait_until(lambda: c.stats().get("http.ingress.golang.panic_error") == 0)
    assert wait_until(lambda: "Client may cancel the request prematurely" in c.stderr())


def test_inject_data_from_goroutine(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("async")], upstream.port))
    r, data = request(c.port(), "/big?bytes=10", headers={"x-test-async": "inject"})
    assert r.status == 200
    assert data == b"injected-1|injected-2|" + b"x" * 10


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_busy_plugin_pauses_the_upstream_instead_of_buffering(start_corral, upstream, isolation,
                                                               monkeypatch):
    # The sanitizer build's quarantine keeps freed memory resident; peak RSS then says nothing.
    monkeypatch.setenv("ASAN_OPTIONS", "quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
    c = start_corral(golang_config(isolation, [golang_filter("async")], upstream.port))
    request(c.port(), "/big?bytes=100000")  # warm up
    before = peak_rss_kb(c.proc.pid)
    size = 40 * 1024 * 1024
    r, data = request(c.port(), f"/big?bytes={size}", headers={"x-test-async": "slow-encode"})
    assert r.status == 200 and len(data) == size
    grown_mb = (peak_rss_kb(c.proc.pid) - before) / 1024
    # Without the pause the 300 ms the plugin is busy let all 40 MiB pile up in corral.
    assert grown_mb < 16, f"peak RSS grew by {grown_mb:.1f} MiB"


def test_goroutine_panic_recovered_by_plugin(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("async")], upstream.port))
    r, data = request(c.port(), "/echo", headers={"x-test-async": "panic"})
    assert r.status == 500 and data == PANIC_BODY


def test_many_concurrent_async_requests(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("async")], upstream.port), concurrency=2)
    errors = []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", c.port(), timeout=10)
        for _ in range(50):
            r, data = request(c.port(), "/echo", conn=conn)
            if r.status != 200 or hdr(echo(data), "x-test-async-header") != ["set-from-goroutine"]:
                errors.append(r.status)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


# ---- local replies and panics in each phase ----

@pytest.mark.parametrize("phase", ["decode-headers", "decode-data", "encode-headers", "encode-data"])
def test_local_reply_in_each_phase(start_corral, upstream, isolation, phase):
    c = start_corral(golang_config(isolation, [golang_filter("localreply")], upstream.port))
    r, data = request(c.port(), "/echo", method="POST", body=b"payload",
                      headers={"x-test-reply-phase": phase})
    assert r.status == 403
    assert data == f"denied in {phase}".encode()
    assert r.getheader("x-test-reply") == phase
    assert r.getheader("content-type") == "text/x-test"
    assert r.getheader("x-corral-error") is None


def test_a_local_reply_before_a_golang_filter_passes_it(start_corral, upstream, isolation):
    # The first filter answers in decode-headers; the reply goes through the second filter's
    # encoder, which never saw the request.
    filters = [golang_filter("localreply", name="first"),
               golang_filter("headers", typed_struct(greeting="hi"), name="second")]
    c = start_corral(golang_config(isolation, filters, upstream.port))
    r, data = request(c.port(), "/echo", headers={"x-test-reply-phase": "decode-headers"})
    assert r.status == 403 and data == b"denied in decode-headers"
    assert request(c.port(), "/echo")[0].status == 200


def test_local_reply_in_decode_trailers(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("localreply")], upstream.port))
    raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nx-test-reply-phase: decode-trailers\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n")
    out = raw_exchange(c.port(), raw)
    assert status_of(out) == 403 and out.endswith(b"denied in decode-trailers")


@pytest.mark.parametrize("phase", ["decode-headers", "decode-data", "decode-trailers",
                                   "encode-headers", "encode-data"])
def test_panic_in_each_phase_is_500(start_corral, upstream, isolation, phase):
    c = start_corral(golang_config(isolation, [golang_filter("panic")], upstream.port))
    if phase == "decode-trailers":
        raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nx-test-panic-phase: decode-trailers\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n")
        out = raw_exchange(c.port(), raw)
        assert status_of(out) == 500 and out.endswith(PANIC_BODY)
    else:
        r, data = request(c.port(), "/echo", method="POST", body=b"payload",
                          headers={"x-test-panic-phase": phase})
        assert r.status == 500 and data == PANIC_BODY
    assert wait_until(lambda: c.stats().get("http.ingress.golang.panic_error") == 1)
    assert wait_until(lambda: f"test panic in {phase}" in c.stderr())  # logged, never sent
    assert wait_until(lambda: "[golang][panic] http: panic serving" in c.stderr())  # with the plugin's name
    r, _ = request(c.port(), "/echo")  # other requests are untouched
    assert r.status == 200


def test_panic_in_on_log_is_contained(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("panic")], upstream.port))
    r, _ = request(c.port(), "/echo", headers={"x-test-panic-phase": "on-log"})
    assert r.status == 200
    r, _ = request(c.port(), "/echo")
    assert r.status == 200


def test_invalid_status_is_500_and_counted(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("badstatus")], upstream.port))
    r, data = request(c.port(), "/echo")
    assert r.status == 500 and data == PANIC_BODY
    assert wait_until(lambda: c.stats().get("http.ingress.golang.invalid_status") == 1)


# ---- stream info, properties, metadata, filter state ----

@pytest.mark.parametrize("off_thread", [False, True])
def test_stream_info_properties_metadata(start_corral, upstream, isolation, off_thread):
    routes = [{"name": "the-route", "match": {"prefix": "/"}, "route": {"cluster": "up"}}]
    c = start_corral(golang_config(isolation, [golang_filter("info")], upstream.port, routes=routes))
    headers = {"User-Agent": "ua/1", "x-request-id": "rid-1"}
    if off_thread:
        headers["x-test-offthread"] = "1"
    r, _ = request(c.port(), "/echo/a?x=y", headers=headers)
    assert r.status == 200
    assert r.getheader("x-test-metadata") == "hello/42"
    assert r.getheader("x-test-filter-state") == "state-value"
    props = dict(kv.split("=", 1) for kv in r.getheader("x-test-properties").split(";"))
    assert props["request.path"] == "/echo/a?x=y"
    assert props["request.url_path"] == "/echo/a"
    assert props["request.query"] == "x=y"
    assert props["request.method"] == "GET"
    assert props["request.protocol"] == "HTTP/1.1"
    assert props["request.id"] == "rid-1"
    assert props["request.useragent"] == "ua/1"
    assert props["source.address"].startswith("127.0.0.1:")
    assert props["destination.port"] == str(c.port())
    assert props["xds.route_name"] == "the-route"
    assert props["xds.virtual_host_name"] == "all"
    assert props["no.such.property"].startswith("error:")
    assert r.getheader("x-test-stream-info") == (
        "route=the-route proto=HTTP/1.1 code=200 cluster=up upstream=true remote=true local=true")


def test_plugin_metrics_and_log_phases(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("metrics")], upstream.port))
    for i in range(1, 4):
        r, _ = request(c.port())
        assert r.getheader("x-test-requests") == str(i)
    deadline = time.time() + 5
    while time.time() < deadline:
        s = c.stats()
        if s.get("corral_test.on_destroy") == 3:
            break
        time.sleep(0.05)
    s = c.stats()
    assert s["corral_test.requests"] == 3
    assert s["corral_test.on_stream_complete"] == 3
    assert s["corral_test.on_log"] == 3
    assert s["corral_test.on_destroy"] == 3
    assert s["corral_test.inflight"] == 0
    _, prom = c.admin("/stats/prometheus")
    assert "envoy_corral_test_requests 3" in prom


# ---- trailers and routing ----

def test_trailers_both_directions(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("trailers")], upstream.port))
    raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"3\r\nabc\r\n0\r\nx-test-req-trailer: t1\r\n\r\n")
    out = raw_exchange(c.port(), raw)
    info = raw_json_body(out)
    trailers = dict((k.lower(), v) for k, v in info["trailers"])
    assert trailers["x-test-req-trailer"] == "seen:t1"
    assert trailers["x-test-added-trailer"] == "by-plugin"
    out = raw_exchange(c.port(), b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
    assert b"x-test-resp-trailer: seen:" in out


def test_add_data_in_trailers_phase(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("trailers")], upstream.port))
    raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"3\r\nabc\r\n0\r\nx-test-add-data: 1\r\n\r\n")
    out = raw_exchange(c.port(), raw)
    assert status_of(out) == 200
    info = raw_json_body(out)
    assert info["body_head"] == "abc|added-by-plugin"
    assert info["body_len"] == len("abc|added-by-plugin")


def test_clear_route_cache_reroutes(start_corral, upstream, isolation):
    routes = [{"match": {"prefix": "/moved"}, "direct_response": {"status": 299, "body": {"inline_string": "moved"}}},
              {"match": {"prefix": "/"}, "route": {"cluster": "up"}}]
    c = start_corral(golang_config(isolation, [golang_filter("routing")], upstream.port, routes=routes))
    r, data = request(c.port(), "/echo", headers={"x-test-new-path": "/moved/here"})
    assert r.status == 299 and data == b"moved"


def test_upstream_override_host(start_corral, upstream, upstream2, isolation):
    cfg = golang_config(isolation, [golang_filter("routing")], upstream.port)
    cfg["static_resources"]["clusters"] = [cluster("up", [upstream.port, upstream2.port])]
    c = start_corral(cfg)
    for _ in range(4):
        r, data = request(c.port(), "/echo", headers={"x-test-override-host": f"127.0.0.1:{upstream2.port}"})
        assert echo(data)["server"] == "u2"
    r, data = request(c.port(), "/echo", headers={"x-test-override-host": "not-an-ip"})
    assert r.status == 400
    r, data = request(c.port(), "/echo", headers={"x-test-override-host": "127.0.0.9:1"})
    assert r.status == 503  # strict: the host is not in the cluster


# ---- GC and request finalization ----

def test_gc_stress_and_all_requests_finalized(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("gcstress")], upstream.port), concurrency=2)
    errors = []

    def client(n, gc_every):
        conn = http.client.HTTPConnection("127.0.0.1", c.port(), timeout=10)
        for i in range(n):
            h = {"x-test-gc": "1"} if i % gc_every == 0 else {}
            r, _ = request(c.port(), "/echo", headers=h, conn=conn)
            if r.status != 200:
                errors.append(r.status)
        conn.close()

    threads = [threading.Thread(target=client, args=(2500, 97)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    # 10k requests done: once Go's GC has run its finalizers, no request state is left.
    deadline = time.time() + 20
    live = None
    while time.time() < deadline:
        request(c.port(), "/echo", headers={"x-test-gc": "1"})
        live = c.stats()["http.ingress.golang.live_requests"]
        if live <= 1:
            break
        time.sleep(0.2)
    assert live <= 1  # at most the request that ran the last GC itself


# ---- the example plugin (examples/auth-plugin), as wired in the quickstart ----

def test_example_auth_plugin(start_corral, upstream, isolation):
    so = os.environ.get("CORRAL_EXAMPLE_AUTH_SO") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "examples", "auth.so")
    f = golang_filter("token-auth", typed_struct(protected_prefix="/echo/secure",
                                                 tokens={"let-me-in": "alice"}),
                      library_id="example-auth", path=so)
    c = start_corral(golang_config(isolation, [f], upstream.port, libraries=("example-auth",)))
    r, data = request(c.port(), "/echo/secure/x")
    assert r.status == 401 and data == b"unauthorized\n"
    assert r.getheader("www-authenticate") == 'Bearer realm="corral"'
    r, data = request(c.port(), "/echo/secure/x", headers={"Authorization": "Bearer wrong"})
    assert r.status == 401
    r, data = request(c.port(), "/echo/secure/x", headers={"Authorization": "Bearer let-me-in"})
    assert r.status == 200 and hdr(echo(data), "x-auth-user") == ["alice"]
    assert r.getheader("x-auth-plugin") == "corral-example"
    r, data = request(c.port(), "/echo/open")
    assert r.status == 200 and hdr(echo(data), "x-auth-user") == []
    assert wait_until(lambda: c.stats().get("example_auth.denied") == 2)


def test_basic_auth_plugin(start_corral, upstream, isolation):
    c = start_corral(golang_config(isolation, [golang_filter("basic-auth", typed_struct(user="u", password="p"))],
                                   upstream.port))
    r, _ = request(c.port())
    assert r.status == 401 and r.getheader("www-authenticate") == 'Basic realm="corral"'
    r, _ = request(c.port(), headers={"Authorization": "Basic dTp3cm9uZw=="})  # u:wrong
    assert r.status == 401
    r, data = request(c.port(), headers={"Authorization": "Basic dTpw"})  # u:p
    assert r.status == 200 and hdr(echo(data), "authorization") == []
