"""HTTP/1.1 proxying: routing, headers, keep-alive, streaming, pipelining, errors."""

import http.client
import json
import socket
import threading
import time

from conftest import ROUTER, bootstrap, cluster, listener, raw_exchange, status_of
from conftest import http_request as get


def proxy_config(upstream_port, routes=None, hcm_extra=None, clusters=None, virtual_hosts=None):
    routes = routes or [{"match": {"prefix": "/"}, "route": {"cluster": "up", "timeout": "2s"}}]
    return bootstrap([listener("ingress", routes, hcm_extra=hcm_extra, virtual_hosts=virtual_hosts)],
                     clusters or [cluster("up", [upstream_port])])


def test_direct_response(start_corral):
    cfg = bootstrap([listener("ingress", [
        {"match": {"path": "/hello"}, "direct_response": {"status": 201, "body": {"inline_string": "hi"}}},
    ])])
    c = start_corral(cfg)
    r, body = get(c.port(), "/hello")
    assert r.status == 201 and body == b"hi"
    assert r.getheader("content-length") == "2"


def test_proxy_request_and_forwarding_headers(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    r, body = get(c.port(), "/echo?x=1", headers={"X-Custom": "v", "User-Agent": "t"})
    assert r.status == 200
    info = json.loads(body)
    h = dict(info["headers"])
    assert info["path"] == "/echo?x=1"
    assert h["x-custom"] == "v"
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert len(h["x-request-id"]) == 36 and h["x-request-id"][14] == "4"
    assert h["host"] == f"127.0.0.1:{c.port()}"
    assert r.getheader("x-envoy-upstream-service-time") is not None
    assert r.getheader("server") == "corral"


def test_existing_forwarding_headers_are_appended_and_request_id_kept(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    _, body = get(c.port(), "/echo", headers={"X-Forwarded-For": "10.0.0.1", "X-Request-Id": "abc"})
    h = dict(json.loads(body)["headers"])
    assert h["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert h["x-request-id"] == "abc"


def test_hop_by_hop_headers_removed_both_ways(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    raw = raw_exchange(c.port(), b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-drop\r\n"
                                 b"X-Drop: 1\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nTE: trailers\r\n"
                                 b"Connection: close\r\n\r\n")
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    names = [k for k, _ in body["headers"]]
    for hop in ("connection", "x-drop", "keep-alive", "proxy-connection"):
        assert hop not in names
    assert ("te", "trailers") in [tuple(x) for x in body["headers"]]
    r, data = get(c.port(), "/hop")
    assert data == b"ok"
    assert r.getheader("x-public") == "yes"
    assert r.getheader("x-private") is None
    assert r.getheader("keep-alive") is None
    assert r.getheader("proxy-connection") is None


def test_keepalive_reuses_both_hops(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    conn = http.client.HTTPConnection("127.0.0.1", c.port(), timeout=10)
    ids = set()
    for _ in range(20):
        r, body = get(c.port(), "/echo", conn=conn)
        assert r.status == 200
        ids.add(json.loads(body)["conn_id"])
    conn.close()
    assert len(ids) == 1, "upstream connection was not reused"
    assert upstream.conn_count == 1
    s = c.stats()
    assert s["http.ingress.downstream_cx_total"] == 1
    assert s["http.ingress.downstream_rq_total"] == 20
    assert s["cluster.up.upstream_cx_total"] == 1
    assert s["cluster.up.upstream_rq_total"] == 20
    assert s["cluster.up.upstream_rq_2xx"] == 20


def test_large_bodies_stream_both_ways(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    payload = bytes(range(256)) * (8 * 1024 * 4)  # 8 MiB, content-length
    r, body = get(c.port(), "/echo", method="POST", body=payload)
    assert r.status == 200
    assert json.loads(body)["body_len"] == len(payload)
    r, body = get(c.port(), "/big?bytes=6000000")
    assert r.status == 200 and len(body) == 6000000


def test_chunked_request_and_response(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))

    def gen():
        for i in range(50):
            yield b"y" * 1000

    conn = http.client.HTTPConnection("127.0.0.1", c.port(), timeout=10)
    conn.request("POST", "/echo", body=gen(), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    info = json.loads(r.read())
    assert info["body_len"] == 50000
    assert ("transfer-encoding", "chunked") in [tuple(x) for x in info["headers"]]
    conn.request("GET", "/chunked?n=7&size=1000")
    r = conn.getresponse()
    assert r.getheader("transfer-encoding") == "chunked"
    data = r.read()
    assert len(data) == 7000 and data[:1000] == b"a" * 1000
    conn.close()


def test_response_trailers_pass_through(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    raw = raw_exchange(c.port(), b"GET /trailers HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert b"transfer-encoding: chunked" in raw
    assert raw.endswith(b"5\r\nhello\r\n0\r\nx-checksum: abc123\r\n\r\n")


def test_request_trailers_pass_through(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    raw = raw_exchange(c.port(), b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                                 b"Connection: close\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n")
    info = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert info["body_len"] == 3
    assert info["trailers"] == [["x-t", "1"]]


def test_pipelined_requests_answered_in_order(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    reqs = b"".join(b"GET /echo?n=%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(5))
    reqs += b"GET /slow?ms=50 HTTP/1.1\r\nHost: a\r\n\r\nGET /echo?n=last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    raw = raw_exchange(c.port(), reqs, timeout=10)
    order = []
    for part in raw.split(b"HTTP/1.1 200 OK")[1:]:
        body = part.split(b"\r\n\r\n", 1)[1]
        if body.startswith(b"slow"):
            order.append("slow")
        else:
            order.append(json.loads(body[:body.rindex(b"}") + 1])["path"])
    assert order == [f"/echo?n={i}" for i in range(5)] + ["slow", "/echo?n=last"]


def test_expect_100_continue(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    s = socket.create_connection(("127.0.0.1", c.port()), timeout=5)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    first = s.recv(1024)
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(b"abcd")
    rest = first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    while b"}" not in rest:
        rest += s.recv(65536)
    s.close()
    assert status_of(rest) == 200
    info = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert info["body_len"] == 4
    assert "expect" not in [k for k, _ in info["headers"]]


def test_head_and_http10(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    raw = raw_exchange(c.port(), b"HEAD /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(raw) == 200 and raw.endswith(b"\r\n\r\n") and b"content-length: 1234" in raw
    raw = raw_exchange(c.port(), b"GET /echo HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200") and b"connection: close" in raw
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["method"] == "GET"


def test_close_delimited_upstream_body(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    r, body = get(c.port(), "/close-delimited")
    assert r.status == 200 and body == b"until-close-body"


def test_no_route_404(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port, routes=[
        {"match": {"prefix": "/only"}, "route": {"cluster": "up"}}]))
    r, body = get(c.port(), "/other")
    assert r.status == 404 and r.getheader("x-corral-error") == "route_not_found" and body
    assert c.stats()["http.ingress.downstream_rq_4xx"] == 1


def test_upstream_connect_failure_503(start_corral):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead_port = s.getsockname()[1]
    s.close()  # nothing listens here now
    c = start_corral(proxy_config(dead_port))
    r, body = get(c.port(), "/echo")
    assert r.status == 503
    assert r.getheader("x-corral-error") == "upstream_reset_before_response_started{connection_failure}"
    assert b"connection_failure" in body
    assert c.stats()["cluster.up.upstream_cx_connect_fail"] == 1


def test_upstream_reset_before_response_503(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    r, _ = get(c.port(), "/reset")
    assert r.status == 503
    assert r.getheader("x-corral-error").startswith("upstream_reset_before_response_started")
    # The next request on a fresh upstream connection works.
    r, _ = get(c.port(), "/echo")
    assert r.status == 200


def test_upstream_reset_after_headers_closes_downstream(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    raw = raw_exchange(c.port(), b"GET /reset-after-headers HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(raw) == 200
    assert len(raw.split(b"\r\n\r\n", 1)[1]) < 100  # truncated, then the connection closed


def test_upstream_timeout_504(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port, routes=[
        {"match": {"prefix": "/"}, "route": {"cluster": "up", "timeout": "0.2s"}}]))
    t0 = time.time()
    r, _ = get(c.port(), "/slow?ms=2000")
    assert r.status == 504 and r.getheader("x-corral-error") == "upstream_response_timeout"
    assert time.time() - t0 < 1.5
    assert c.stats()["cluster.up.upstream_rq_timeout"] == 1


def test_circuit_breaker_503(start_corral, upstream):
    cfg = proxy_config(upstream.port, clusters=[cluster("up", [upstream.port], breakers={
        "max_connections": 1, "max_pending_requests": 1, "max_requests": 1})])
    c = start_corral(cfg)
    results = []

    def slow():
        r, _ = get(c.port(), "/slow?ms=600")
        results.append(r.status)

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    r, _ = get(c.port(), "/echo")
    for t in threads:
        t.join()
    statuses = sorted(results + [r.status])
    assert statuses.count(503) >= 1 and statuses.count(200) >= 1
    assert c.stats()["cluster.up.upstream_rq_pending_overflow"] >= 1


def test_round_robin_across_hosts(start_corral, upstream, upstream2):
    cfg = proxy_config(upstream.port, clusters=[cluster("up", [upstream.port, upstream2.port])])
    c = start_corral(cfg)
    servers = [json.loads(get(c.port(), "/echo")[1])["server"] for _ in range(6)]
    assert servers.count("u1") == 3 and servers.count("u2") == 3


def test_least_request_and_random_use_all_hosts(start_corral, upstream, upstream2):
    for lb in ("LEAST_REQUEST", "RANDOM"):
        cfg = proxy_config(upstream.port, clusters=[cluster("up", [upstream.port, upstream2.port], lb=lb)])
        c = start_corral(cfg)
        servers = {json.loads(get(c.port(), "/echo")[1])["server"] for _ in range(40)}
        assert servers == {"u1", "u2"}, lb


def test_strict_dns_cluster(start_corral, upstream):
    # localhost has an IPv4 address here; AUTO (Envoy's default: IPv6 first, then IPv4) and
    # V4_ONLY both find it.
    for family in (None, "V4_ONLY", "V4_PREFERRED"):
        cl = cluster("up", [upstream.port], host="localhost", type_="STRICT_DNS")
        if family:
            cl["dns_lookup_family"] = family
        c = start_corral(proxy_config(upstream.port, clusters=[cl]))
        r, _ = get(c.port(), "/echo")
        assert r.status == 200, family


def test_strict_dns_unresolvable_is_a_config_error(start_corral, upstream):
    import subprocess
    import tempfile
    import yaml
    from conftest import CORRAL_BIN
    # An IPv4 literal has no IPv6 address: fails at once, with no DNS query, on any machine.
    cl = cluster("up", [upstream.port], host="127.0.0.1", type_="STRICT_DNS")
    cl["dns_lookup_family"] = "V6_ONLY"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(proxy_config(upstream.port, clusters=[cl]), f)
        f.flush()
        p = subprocess.run([CORRAL_BIN, "--mode", "validate", "-c", f.name], capture_output=True,
                           text=True, timeout=30)
    assert p.returncode == 1
    assert "static_resources.clusters[0].load_assignment" in p.stderr


def test_route_matching_and_rewrites(start_corral, upstream):
    routes = [
        {"match": {"path": "/exact"}, "direct_response": {"status": 200, "body": {"inline_string": "exact"}}},
        {"match": {"safe_regex": {"regex": "/re/[0-9]+"}},
         "direct_response": {"status": 200, "body": {"inline_string": "regex"}}},
        {"match": {"prefix": "/h", "headers": [{"name": "x-env", "string_match": {"exact": "canary"}}]},
         "direct_response": {"status": 200, "body": {"inline_string": "canary"}}},
        {"match": {"prefix": "/api/"},
         "route": {"cluster": "up", "prefix_rewrite": "/rewritten/", "host_rewrite_literal": "backend.local"}},
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "fallback"}}},
    ]
    c = start_corral(proxy_config(upstream.port, routes=routes))
    assert get(c.port(), "/exact?q=1")[1] == b"exact"
    assert get(c.port(), "/exact/no")[1] == b"fallback"
    assert get(c.port(), "/re/123")[1] == b"regex"
    assert get(c.port(), "/re/abc")[1] == b"fallback"
    assert get(c.port(), "/h", headers={"x-env": "canary"})[1] == b"canary"
    assert get(c.port(), "/h")[1] == b"fallback"
    info = json.loads(get(c.port(), "/api/v1/x")[1])
    h = dict(info["headers"])
    assert info["path"] == "/rewritten/v1/x"
    assert h["host"] == "backend.local"
    assert h["x-envoy-original-path"] == "/api/v1/x"


def test_virtual_host_domains(start_corral):
    def vh(name, domains, body):
        return {"name": name, "domains": domains, "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": body}}}]}
    cfg = bootstrap([listener("ingress", None, virtual_hosts=[
        vh("exact", ["api.example.com"], "exact"),
        vh("suffix", ["*.example.com"], "suffix"),
        vh("longer-suffix", ["*.eu.example.com"], "longer"),
        vh("prefix", ["api.*"], "prefix"),
        vh("any", ["*"], "any"),
    ])])
    c = start_corral(cfg)
    for host, want in [("api.example.com", b"exact"), ("www.example.com", b"suffix"),
                       ("x.eu.example.com", b"longer"), ("api.other.org", b"prefix"),
                       ("other.org", b"any"), ("API.EXAMPLE.COM", b"exact")]:
        assert get(c.port(), "/", headers={"Host": host})[1] == want, host


def test_upgrade_rejected_cleanly(start_corral, upstream):
    c = start_corral(proxy_config(upstream.port))
    raw = raw_exchange(c.port(), b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                                 b"Upgrade: websocket\r\n\r\n")
    assert status_of(raw) == 403 and b"x-corral-error: upgrade_not_supported" in raw
    raw = raw_exchange(c.port(), b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
    assert status_of(raw) == 403
    # h2c upgrade offers are dropped, the request is served.
    raw = raw_exchange(c.port(), b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                                 b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
                                 b"Connection: close\r\n\r\n")
    assert status_of(raw) == 200


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_slow_client_does_not_make_corral_buffer_the_body(start_corral, upstream):
    """Flow control: a 64 MB response to a client that does not read stays mostly in the
    upstream's socket, not in corral's memory."""
    c = start_corral(proxy_config(upstream.port, routes=[
        {"match": {"prefix": "/"}, "route": {"cluster": "up", "timeout": "60s"}}]))
    before = _rss_kb(c.proc.pid)
    size = 64 * 1024 * 1024
    s = socket.create_connection(("127.0.0.1", c.port()), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(b"GET /big?bytes=%d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % size)
    time.sleep(1.5)  # not reading
    grown_kb = _rss_kb(c.proc.pid) - before
    assert grown_kb < 16 * 1024, f"corral grew by {grown_kb} KB while the client did not read"
    got = 0
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    s.close()
    assert got > size  # headers + the whole body arrived in the end
