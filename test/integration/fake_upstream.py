"""A small, scriptable HTTP/1.1 upstream for integration tests.

Behaviour is chosen by the request path, so one server serves every test:
  /echo...            200, JSON body describing the request (method, path, headers, body size, conn id)
  /slow?ms=N          waits N ms, then 200 "slow"
  /chunked?n=N&size=S chunked response of N chunks of S bytes
  /big?bytes=N        content-length response of N bytes
  /trailers           chunked response with trailers
  /reset              closes the connection without a response
  /reset-after-headers  sends headers with a content-length, part of the body, then closes
  /close-delimited    HTTP/1.0-style body ended by closing the connection
  /status?code=N      empty response with that status
  /hop                response carrying hop-by-hop headers that must not reach the client
Every wait is bounded; the server runs in daemon threads and stops with stop().
"""

import json
import socket
import socketserver
import threading
import time
import urllib.parse


class _Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.request.settimeout(30)
        self.buf = b""
        with self.server.lock:
            self.server.conn_count += 1
            self.conn_id = self.server.conn_count

    def _read_until(self, marker):
        while marker not in self.buf:
            data = self.request.recv(65536)
            if not data:
                return None
            self.buf += data
        idx = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:idx], self.buf[idx:]
        return out

    def _read_exact(self, n):
        while len(self.buf) < n:
            data = self.request.recv(65536)
            if not data:
                return None
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_request(self):
        head = self._read_until(b"\r\n\r\n")
        if head is None:
            return None
        lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
        hd = {}
        for k, v in headers:
            hd.setdefault(k, v)
        body = b""
        trailers = []
        if hd.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = self._read_until(b"\r\n")
                if size_line is None:
                    return None
                size = int(size_line.strip().split(b";")[0], 16)
                if size == 0:
                    while True:
                        line = self._read_until(b"\r\n")
                        if line is None or line == b"\r\n":
                            break
                        k, v = line.decode("latin-1").strip().split(":", 1)
                        trailers.append((k.strip().lower(), v.strip()))
                    break
                chunk = self._read_exact(size + 2)
                if chunk is None:
                    return None
                body += chunk[:-2]
        elif "content-length" in hd:
            body = self._read_exact(int(hd["content-length"]))
            if body is None:
                return None
        return {
            "method": method,
            "target": target,
            "version": version,
            "headers": headers,
            "trailers": trailers,
            "body": body,
        }

    def _send(self, data):
        self.request.sendall(data)

    def _respond(self, status, body=b"", extra=(), reason="OK"):
        head = f"HTTP/1.1 {status} {reason}\r\ncontent-length: {len(body)}\r\n"
        for k, v in extra:
            head += f"{k}: {v}\r\n"
        self._send(head.encode() + b"\r\n" + body)

    def handle(self):
        while True:
            req = self._read_request()
            if req is None:
                return
            with self.server.lock:
                self.server.requests.append(req)
            url = urllib.parse.urlsplit(req["target"])
            q = dict(urllib.parse.parse_qsl(url.query))
            path = url.path
            if req["method"] == "HEAD":
                self._send(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n")
            elif path.startswith("/echo") or path.startswith("/rewritten") or path == "/":
                info = {
                    "method": req["method"],
                    "path": req["target"],
                    "headers": req["headers"],
                    "trailers": req["trailers"],
                    "body_len": len(req["body"]),
                    "body_head": req["body"][:64].decode("latin-1"),
                    "conn_id": self.conn_id,
                    "server": self.server.name,
                }
                self._respond(200, json.dumps(info).encode(), [("content-type", "application/json")])
            elif path == "/slow":
                time.sleep(int(q.get("ms", "100")) / 1000.0)
                self._respond(200, b"slow")
            elif path == "/chunked":
                n, size = int(q.get("n", "3")), int(q.get("size", "10"))
                self._send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                for i in range(n):
                    data = bytes([ord("a") + i % 26]) * size
                    self._send(b"%x\r\n" % size + data + b"\r\n")
                    if "delay_ms" in q:
                        time.sleep(int(q["delay_ms"]) / 1000.0)
                self._send(b"0\r\n\r\n")
            elif path == "/big":
                n = int(q.get("bytes", "1000"))
                self._respond(200, b"x" * n)
            elif path == "/trailers":
                self._send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n"
                           b"5\r\nhello\r\n0\r\nx-checksum: abc123\r\n\r\n")
            elif path == "/reset":
                self.request.shutdown(socket.SHUT_RDWR)
                return
            elif path == "/reset-after-headers":
                self._send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
                time.sleep(0.05)
                self.request.shutdown(socket.SHUT_RDWR)
                return
            elif path == "/close-delimited":
                self._send(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil-close-body")
                self.request.shutdown(socket.SHUT_RDWR)
                return
            elif path == "/status":
                code = int(q.get("code", "200"))
                self._respond(code, b"" if code in (204, 304) else b"s", reason="X")
            elif path == "/hop":
                self._send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: x-private\r\n"
                           b"x-private: secret\r\nkeep-alive: timeout=5\r\nproxy-connection: keep-alive\r\n"
                           b"x-public: yes\r\n\r\nok")
            else:
                self._respond(404, b"fake upstream: no such path")


class FakeUpstream:
    def __init__(self, name="upstream"):
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.lock = threading.Lock()
        self.server.conn_count = 0
        self.server.requests = []
        self.server.name = name
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def conn_count(self):
        with self.server.lock:
            return self.server.conn_count

    @property
    def requests(self):
        with self.server.lock:
            return list(self.server.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
