"""A corpus of malformed and request-smuggling inputs, each with the status corral must answer.
After each, the connection is closed and the proxy keeps serving."""

import pytest

from conftest import bootstrap, cluster, listener, raw_exchange, status_of

CORPUS = [
    # (name, raw request, expected status)
    ("cl_and_te", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_and_cl", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    ("two_different_cl", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("two_equal_cl", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
    ("cl_list", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
    ("cl_negative", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    ("cl_not_number", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400),
    ("te_gzip_only", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ("te_chunked_not_last", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501),
    ("bad_chunk_size", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk_size_overflow", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk_missing_crlf", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n", 400),
    ("bad_method_char", b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("unknown_method", b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("space_in_target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("ctl_in_target", b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("bad_version", b"GET / HTTP/9.9\r\nHost: a\r\n\r\n", 400),
    ("http2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ("space_before_colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-Bad : v\r\n\r\n", 400),
    ("bad_header_name_char", b"GET / HTTP/1.1\r\nHost: a\r\nX(Bad): v\r\n\r\n", 400),
    ("nul_in_header_value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", 400),
    ("ctl_in_header_value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x07b\r\n\r\n", 400),
    ("bare_cr_in_value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n", 400),
    ("obs_fold", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("missing_host_11", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two_hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("header_block_too_large", b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * (61 * 1024) + b"\r\n\r\n", 431),
    ("many_small_headers_over_size", b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 700) for i in range(95)) + b"\r\n", 431),
    ("too_many_headers", b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
    ("huge_target", b"GET /" + b"a" * (61 * 1024) + b" HTTP/1.1\r\nHost: a\r\n\r\n", 431),
    ("websocket_upgrade", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", 403),
    ("connect", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 403),
]


@pytest.fixture(scope="module")
def corral_for_corpus(tmp_path_factory, request):
    # One corral for the whole corpus: every bad request must leave it serving.
    from conftest import Corral
    from fake_upstream import FakeUpstream
    up = FakeUpstream()
    cfg = bootstrap([listener("ingress", [{"match": {"prefix": "/"}, "route": {"cluster": "up"}}])],
                    [cluster("up", [up.port])])
    c = Corral(cfg, str(tmp_path_factory.mktemp("corpus")))
    yield c
    assert c.stop() == 0, c.stderr()
    up.stop()


@pytest.mark.parametrize("name,raw,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_request(corral_for_corpus, name, raw, expected):
    c = corral_for_corpus
    out = raw_exchange(c.port(), raw)
    assert out, f"{name}: no response"
    assert status_of(out) == expected, out[:300]
    head = out.split(b"\r\n\r\n", 1)[0].lower()
    assert b"connection: close" in head
    assert b"x-corral-error:" in head
    # The next request on a fresh connection is served normally.
    ok = raw_exchange(c.port(), b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(ok) == 200


def test_smuggled_request_is_not_forwarded(corral_for_corpus):
    """CL.TE: if a proxy used Content-Length and the upstream chunked (or vice versa), the
    'GET /smuggled' would reach the upstream as a second request. It must not."""
    c = corral_for_corpus
    raw = (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nX: y\r\n\r\n")
    out = raw_exchange(c.port(), raw)
    assert status_of(out) == 400
    assert out.count(b"HTTP/1.1") == 1


def test_stats_count_protocol_errors(corral_for_corpus):
    c = corral_for_corpus
    raw_exchange(c.port(), b"BAD\r\n\r\n")
    assert c.stats()["http.ingress.downstream_cx_protocol_error"] >= 1
