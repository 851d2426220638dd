"""Garbage from a sandbox process costs that process, never the proxy: a stand-in sandbox
(source/sandbox/testdata/hostile_sandbox.cc) breaks the protocol in one way per test; the proxy
kills it, fails the stream with a clear 503, and serves on."""

import http.client
import os

import pytest

from conftest import ROUTER, bootstrap, cluster, http_request, listener, wait_until
from test_golang import golang_filter
from test_sandbox_failures import counter

HOSTILE = os.path.join(os.path.dirname(os.environ.get("CORRAL_BIN", "build/corral")),
                       "hostile_sandbox")
ROUTE = [{"match": {"prefix": "/"}, "route": {"cluster": "up", "timeout": "5s"}}]


@pytest.mark.parametrize("mode,status,token", [
    ("garbage", 503, "protocol_violation"),
    ("unknown-type", 503, "protocol_violation"),
    ("wrong-stream", 503, "protocol_violation"),
    ("bad-header", 503, "protocol_violation"),
    # Scribbled positions also clear the proxy's "wake me" flag: the action never wakes the
    # proxy, so the stream times out; the next write finds the ring corrupt and kills it.
    ("scribble", 504, "timeout"),
    ("huge-stats", 503, "crashed"),
])
def test_a_hostile_sandbox_is_killed_and_the_proxy_serves(start_corral, upstream, mode, status,
                                                          token):
    cfg = bootstrap([listener("evil", ROUTE, http_filters=[golang_filter("noop", library_id="evil"),
                                                           ROUTER]),
                     listener("plain", ROUTE)], [cluster("up", [upstream.port])])
    cfg["corral"] = {"golang_libraries": {"evil": {
        "isolation": "sandbox", "env": {"HOSTILE_MODE": mode}, "callback_timeout": "2s",
        "restart_backoff": {"base": "0.01s", "max": "0.05s"}}}}
    c = start_corral(cfg, extra_args=("--sandbox-binary", HOSTILE))
    pid = c.proc.pid
    r, body = http_request(c.port("evil"), "/echo")
    assert r.status == status and r.getheader("x-corral-sandbox") == token, (r.status, r.getheaders())
    assert r.getheader("x-injected") is None
    assert wait_until(lambda: counter(c, "evil", "killed") >= 1)
    assert c.proc.pid == pid and c.proc.poll() is None
    assert http_request(c.port("plain"), "/echo")[0].status == 200
    # The replacement is just as hostile: answered the same way, and the proxy still serves.
    assert wait_until(lambda: http_request(c.port("evil"), "/echo")[0].status == status)
    assert http_request(c.port("plain"), "/echo")[0].status == 200


def test_a_local_reply_cannot_lie_about_its_length(start_corral, upstream):
    # Well-formed otherwise, so it is answered — with the framing the proxy computes: a wrong
    # content-length from a sandbox must not split the client's connection.
    cfg = bootstrap([listener("evil", ROUTE, http_filters=[golang_filter("noop", library_id="evil"),
                                                           ROUTER])], [cluster("up", [upstream.port])])
    cfg["corral"] = {"golang_libraries": {"evil": {"isolation": "sandbox",
                                                   "env": {"HOSTILE_MODE": "lying-reply"}}}}
    c = start_corral(cfg, extra_args=("--sandbox-binary", HOSTILE))
    conn = http.client.HTTPConnection("127.0.0.1", c.port("evil"), timeout=5)
    for _ in range(2):  # the same keep-alive connection, twice
        r, body = http_request(c.port("evil"), "/echo", conn=conn)
        assert r.status == 200 and body == b"x" * 100 and r.getheader("x-lie") == "yes"
        assert r.getheader("content-length") == "100"
