"""Fixtures for corral integration tests: a corral process on port-0 listeners and fake
upstreams. Every wait is bounded and every process is reaped."""

import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest
import yaml

from fake_upstream import FakeUpstream

CORRAL_BIN = os.environ.get(
    "CORRAL_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "corral"))

ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
HCM_TYPE = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
            "HttpConnectionManager")


def listener(name, routes, *, stat_prefix="ingress", hcm_extra=None, virtual_hosts=None,
             http_filters=None):
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "route_config": {"name": "r", "virtual_hosts": virtual_hosts or [
            {"name": "all", "domains": ["*"], "routes": routes}]},
        "http_filters": http_filters or [ROUTER],
    }
    hcm.update(hcm_extra or {})
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": hcm}]}],
    }


def cluster(name, ports, *, lb="ROUND_ROBIN", connect_timeout="1s", breakers=None, host="127.0.0.1",
            type_="STATIC"):
    c = {
        "name": name,
        "connect_timeout": connect_timeout,
        "type": type_,
        "lb_policy": lb,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": p}}}}
            for p in ports]}]},
    }
    if breakers:
        c["circuit_breakers"] = {"thresholds": [breakers]}
    return c


def bootstrap(listeners, clusters=()):
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners, "clusters": list(clusters)},
    }


class Corral:
    def __init__(self, config, tmpdir, concurrency=1, extra_args=(), nofile=None, env=None):
        self.tmpdir = tmpdir
        self.config_path = os.path.join(tmpdir, "corral.yaml")
        with open(self.config_path, "w") as f:
            if isinstance(config, str):
                f.write(config)
            else:
                yaml.safe_dump(config, f)
        self.admin_path = os.path.join(tmpdir, "admin_address")
        self.stdout_path = os.path.join(tmpdir, "stdout.log")
        self.stderr_path = os.path.join(tmpdir, "stderr.log")
        self.proc = subprocess.Popen(
            [CORRAL_BIN, "-c", self.config_path, "--concurrency", str(concurrency),
             "--admin-address-path", self.admin_path, "--log-level", os.environ.get("CORRAL_LOG_LEVEL", "debug"), *extra_args],
            stdout=open(self.stdout_path, "wb"), stderr=open(self.stderr_path, "wb"),
            env=dict(os.environ, **(env or {})),
            preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile)))
            if nofile else None)
        deadline = time.time() + 10
        while not os.path.exists(self.admin_path) or os.path.getsize(self.admin_path) == 0:
            if self.proc.poll() is not None or time.time() > deadline:
                if self.proc.poll() is None:
                    self.proc.kill()
                self.proc.wait()  # reaped either way
                raise RuntimeError("corral did not start: " + self.stderr())
            time.sleep(0.02)
        host, port = open(self.admin_path).read().strip().rsplit(":", 1)
        self.admin_port = int(port)
        # Workers may still be starting; /listeners answers from the main thread once bound.
        listeners = json.loads(self.admin("/listeners?format=json")[1])["listener_statuses"]
        self.ports = {l["name"]: l["local_address"]["socket_address"]["port_value"] for l in listeners}

    def port(self, name="ingress"):
        return self.ports[name]

    def admin(self, path, method="GET"):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stats(self):
        _, text = self.admin("/stats")
        out = {}
        for line in text.splitlines():
            k, v = line.split(": ", 1)
            if v.lstrip("-").isdigit():  # histograms read "count=N sum=S"
                out[k] = int(v)
        return out

    def stderr(self):
        try:
            return open(self.stderr_path).read()
        except OSError:
            return ""

    def stdout(self):
        return open(self.stdout_path).read()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode


@pytest.fixture
def upstream():
    u = FakeUpstream("u1")
    yield u
    u.stop()


@pytest.fixture
def upstream2():
    u = FakeUpstream("u2")
    yield u
    u.stop()


@pytest.fixture
def start_corral():
    started = []
    tmpdirs = []

    def start(config, concurrency=1, extra_args=(), nofile=None, env=None):
        d = tempfile.mkdtemp(prefix="corral-test-")
        tmpdirs.append(d)
        c = Corral(config, d, concurrency=concurrency, extra_args=extra_args, nofile=nofile, env=env)
        started.append(c)
        return c

    yield start
    for c in started:
        rc = c.stop()
        assert rc == 0, f"corral exited with {rc}\n{c.stderr()[-4000:]}"
        assert "AddressSanitizer" not in c.stderr() and "runtime error" not in c.stderr(), c.stderr()


def wait_until(predicate, timeout=5.0, interval=0.02):
    """Polls `predicate` until it is true (returns True) or `timeout` passes (returns False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def raw_exchange(port, data, timeout=5.0):
    """Sends raw bytes, returns everything read until the peer closes (or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def http_request(port, path, headers=None, method="GET", body=None, conn=None):
    """One request with http.client (on `conn` if given, else a new connection); (response, body)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r, data


def raw_json_body(raw):
    """The JSON object in a raw HTTP response's body (content-length or chunked)."""
    body = raw.split(b"\r\n\r\n", 1)[1]
    return json.loads(body[body.index(b"{"):body.rindex(b"}") + 1])


def status_of(raw):
    return int(raw.split(b" ", 2)[1])
