"""Randomised bad input: mutated and truncated requests, random bytes, random splits.
corral must answer or close every connection within a bound, never crash or hang, and keep
serving. The seed is fixed so a failure can be replayed."""

import random
import socket
import time

from conftest import bootstrap, cluster, listener, raw_exchange, status_of

SEEDS = [
    b"GET /echo HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    b"GET /chunked?n=3&size=10 HTTP/1.1\r\nHost: a\r\n\r\nGET /echo HTTP/1.1\r\nHost: a\r\n\r\n",
]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randint(0, 4)
        pos = rng.randint(0, max(0, len(data) - 1))
        if op == 0 and data:
            data[pos] = rng.randint(0, 255)
        elif op == 1:
            data[pos:pos] = bytes(rng.choice([b"\r\n", b"\r", b"\n", b" ", b":", b"\x00", b"0", b"ffff"]))
        elif op == 2 and data:
            del data[pos:pos + rng.randint(1, 8)]
        elif op == 3:
            data = data[:pos]
        else:
            data[pos:pos] = data[pos:pos + rng.randint(1, 40)]
    return bytes(data)


def send_in_pieces(port, rng, data, timeout=4.0):
    """Sends `data` in random pieces and reads until corral closes the connection or has sent a
    whole response head. Returns (bytes read, settled)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=0.2)
    try:
        i = 0
        while i < len(data):
            n = rng.randint(1, 64)
            try:
                s.sendall(data[i:i + n])
            except OSError:
                break  # corral already answered and closed
            i += n
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                # Keep-alive after a complete answer is fine; so is waiting for more input, until
                # corral's own timeouts close the connection.
                if b"\r\n\r\n" in out:
                    return out, True
                continue
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False
    finally:
        s.close()


def test_random_garbage_never_hangs_or_crashes(start_corral, upstream):
    # Short timeouts bound every wait: an incomplete request is closed (idle) or answered 408.
    cfg = bootstrap([listener("ingress", [{"match": {"prefix": "/"}, "route": {"cluster": "up", "timeout": "2s"}}],
                              hcm_extra={"stream_idle_timeout": "0.5s",
                                         "common_http_protocol_options": {"idle_timeout": "0.5s"}})],
                    [cluster("up", [upstream.port])])
    c = start_corral(cfg)
    rng = random.Random(20261204)
    for i in range(150):
        if i % 10 == 0:
            data = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 300)))
        else:
            data = mutate(rng, rng.choice(SEEDS))
        out, closed = send_in_pieces(c.port(), rng, data)
        # Every response that came back starts as an HTTP/1.1 status line.
        if out:
            assert out.startswith(b"HTTP/1.1 "), (data, out[:200])
        # Answered, or closed by corral, in bounded time.
        assert closed, f"no answer and no close for input {data!r}: got {out[:200]!r}"
        assert c.proc.poll() is None, f"corral died on input {data!r}"
    ok = raw_exchange(c.port(), b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(ok) == 200
