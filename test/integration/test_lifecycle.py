"""Timeouts, drain on SIGTERM, admin endpoint, access logs, config validation."""

import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import yaml

from conftest import CORRAL_BIN, ROUTER, bootstrap, cluster, listener, raw_exchange, status_of


def routes_to(cluster_name="up", timeout="5s"):
    return [{"match": {"prefix": "/"}, "route": {"cluster": cluster_name, "timeout": timeout}}]


def test_stream_idle_timeout_408(start_corral, upstream):
    cfg = bootstrap([listener("ingress", routes_to(), hcm_extra={"stream_idle_timeout": "0.3s"})],
                    [cluster("up", [upstream.port])])
    c = start_corral(cfg)
    s = socket.create_connection(("127.0.0.1", c.port()), timeout=5)
    # Headers promise a body that never comes.
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    t0 = time.time()
    out = s.recv(4096)
    s.close()
    assert status_of(out) == 408 and b"stream_idle_timeout" in out
    assert 0.2 < time.time() - t0 < 2
    assert c.stats()["http.ingress.downstream_rq_idle_timeout"] == 1


def test_request_timeout_408(start_corral, upstream):
    cfg = bootstrap([listener("ingress", routes_to(), hcm_extra={"request_timeout": "0.3s"})],
                    [cluster("up", [upstream.port])])
    c = start_corral(cfg)
    s = socket.create_connection(("127.0.0.1", c.port()), timeout=5)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
    out = b""
    deadline = time.time() + 3
    while time.time() < deadline and b"\r\n\r\n" not in out:
        # Keep the stream busy (not idle) so only the whole-request timeout can fire.
        try:
            s.sendall(b"1\r\nb\r\n")
        except OSError:
            break
        s.settimeout(0.05)
        try:
            out += s.recv(4096)
        except socket.timeout:
            pass
    s.close()
    assert status_of(out) == 408 and b"request_overall_timeout" in out
    assert c.stats()["http.ingress.downstream_rq_timeout"] == 1


def test_connection_idle_timeout_closes(start_corral, upstream):
    cfg = bootstrap([listener("ingress", routes_to(), hcm_extra={
        "common_http_protocol_options": {"idle_timeout": "0.3s"}})], [cluster("up", [upstream.port])])
    c = start_corral(cfg)
    s = socket.create_connection(("127.0.0.1", c.port()), timeout=5)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
    first = s.recv(65536)
    assert status_of(first) == 200
    t0 = time.time()
    assert s.recv(4096) == b""  # closed by corral after the idle timeout
    assert 0.2 < time.time() - t0 < 3
    s.close()
    assert c.stats()["http.ingress.downstream_cx_idle_timeout"] == 1


def test_drain_on_sigterm_finishes_in_flight(start_corral, upstream):
    cfg = bootstrap([listener("ingress", routes_to())], [cluster("up", [upstream.port])])
    c = start_corral(cfg, concurrency=2)
    port = c.port()
    # An idle keep-alive connection is closed at once by the drain.
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    idle.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(idle.recv(65536)) == 200
    result = {}

    def slow():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/slow?ms=800")
        r = conn.getresponse()
        result["status"] = r.status
        result["body"] = r.read()
        result["connection"] = r.getheader("connection")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    c.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert idle.recv(4096) == b""
    idle.close()
    # New connections are refused while draining (each worker closes its own listener, so allow
    # the other worker a moment).
    refused = False
    deadline = time.time() + 3
    while not refused and time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.05)
        except OSError:
            refused = True
    t.join()
    assert result == {"status": 200, "body": b"slow", "connection": "close"}
    assert refused
    assert c.proc.wait(timeout=10) == 0


def test_drain_time_limit(start_corral, upstream):
    cfg = bootstrap([listener("ingress", routes_to(timeout="30s"))], [cluster("up", [upstream.port])])
    c = start_corral(cfg, extra_args=("--drain-time-s", "1"))
    s = socket.create_connection(("127.0.0.1", c.port()), timeout=10)
    s.sendall(b"GET /slow?ms=5000 HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.2)
    t0 = time.time()
    c.proc.send_signal(signal.SIGTERM)
    assert c.proc.wait(timeout=5) == 0
    assert time.time() - t0 < 3
    s.close()


def test_admin_endpoints(start_corral, upstream):
    cfg = bootstrap([listener("ingress", routes_to())], [cluster("up", [upstream.port])])
    cfg["node"] = {"id": "n1", "cluster": "c1"}
    c = start_corral(cfg)
    assert c.admin("/ready") == (200, "LIVE\n")
    http.client.HTTPConnection("127.0.0.1", c.port(), timeout=5).request("GET", "/echo")
    conn = http.client.HTTPConnection("127.0.0.1", c.port(), timeout=5)
    conn.request("GET", "/echo")
    assert conn.getresponse().status == 200
    conn.close()
    status, text = c.admin("/stats")
    assert status == 200 and "http.ingress.downstream_rq_2xx: " in text
    assert "cluster.up.upstream_cx_connect_fail: 0" in text
    status, prom = c.admin("/stats/prometheus")
    assert status == 200
    assert "# TYPE envoy_http_downstream_rq_total counter" in prom
    assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="up"} ' in prom
    status, js = c.admin("/stats?format=json")
    assert any(s["name"] == "http.ingress.downstream_rq_total" for s in json.loads(js)["stats"])
    status, dump = c.admin("/config_dump")
    boot = json.loads(dump)["configs"][0]["bootstrap"]
    assert boot["static_resources"]["clusters"][0]["name"] == "up"
    assert boot["node"]["id"] == "n1"
    status, info = c.admin("/server_info")
    info = json.loads(info)
    assert info["state"] == "LIVE" and info["command_line_options"]["concurrency"] == 1
    assert info["node"]["cluster"] == "c1"
    assert c.admin("/listeners")[1].startswith("ingress::127.0.0.1:")
    assert c.admin("/healthcheck/fail")[0] == 405
    assert c.admin("/healthcheck/fail", method="POST")[0] == 200
    assert c.admin("/ready")[0] == 503
    assert c.admin("/healthcheck/ok", method="POST")[0] == 200
    assert c.admin("/ready")[0] == 200
    assert c.admin("/nope")[0] == 404
    assert c.admin("/quitquitquit", method="POST")[0] == 200
    assert c.proc.wait(timeout=5) == 0


def test_access_log_file(start_corral, upstream, tmp_path):
    log = tmp_path / "access.log"
    cfg = bootstrap([listener("ingress", routes_to(), hcm_extra={"access_log": [{
        "name": "envoy.access_loggers.file",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                         "path": str(log),
                         "log_format": {"text_format_source": {"inline_string":
                             "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESPONSE_CODE% "
                             "%RESPONSE_FLAGS% %BYTES_SENT% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% 100%%\n"}}}}]})],
                    [cluster("up", [upstream.port])])
    c = start_corral(cfg)
    conn = http.client.HTTPConnection("127.0.0.1", c.port(), timeout=5)
    conn.request("GET", "/big?bytes=10")
    assert conn.getresponse().read() == b"x" * 10
    conn.close()
    raw_exchange(c.port(), b"GET /slow?ms=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    deadline = time.time() + 5
    while time.time() < deadline and log.read_text().count("\n") < 2:
        time.sleep(0.05)
    lines = log.read_text().splitlines()
    assert lines[0] == f"GET /big?bytes=10 200 - 10 127.0.0.1:{upstream.port} up 100%"
    assert lines[1].startswith("GET /slow?ms=1 200")


def test_default_access_log_to_stdout(start_corral, upstream):
    cfg = bootstrap([listener("ingress", [{"match": {"prefix": "/"}, "direct_response": {"status": 204}}],
                              hcm_extra={"access_log": [{"name": "envoy.access_loggers.stdout", "typed_config": {
                                  "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"}}]})])
    c = start_corral(cfg)
    raw_exchange(c.port(), b"GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\nConnection: close\r\n\r\n")
    deadline = time.time() + 5
    while time.time() < deadline and not c.stdout():
        time.sleep(0.05)
    line = c.stdout().splitlines()[0]
    assert '"GET /x HTTP/1.1" 204 - 0 0 ' in line and '"ua"' in line and '"h"' in line


def run_validate(config_text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(config_text)
    try:
        p = subprocess.run([CORRAL_BIN, "--mode", "validate", "-c", f.name], capture_output=True,
                           text=True, timeout=30)
        return p.returncode, p.stdout + p.stderr
    finally:
        os.unlink(f.name)


def test_validate_mode_ok_and_errors():
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    quickstart = open(os.path.join(root, "examples", "quickstart.yaml")).read()
    auth_so = os.environ.get("CORRAL_EXAMPLE_AUTH_SO")
    if auth_so:  # the build's copy of the example plugin, whatever the working directory
        quickstart = quickstart.replace("build/examples/auth.so", auth_so)
    rc, out = run_validate(quickstart)
    assert rc == 0 and "OK" in out
    bad = """\
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: 99999}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: s
          route_config:
            virtual_hosts:
            - name: v
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: missing, timeout: 5}
          http_filters:
          - name: envoy.filters.http.router
  clusters:
  - name: c
    lb_policy: ROUND_ROBINN
    typo_field: 1
    load_assignment: {endpoints: []}
"""
    rc, out = run_validate(bad)
    assert rc == 1
    for expected in [
        "static_resources.listeners[0].address.socket_address.port_value (line 4): value 99999 is out of range",
        "route.timeout (line 17): expected a duration",
        'route.cluster (line 17): unknown cluster "missing"',
        'static_resources.clusters[0].lb_policy (line 22): unknown value "ROUND_ROBINN"',
        "static_resources.clusters[0].typo_field (line 23): unknown field",
    ]:
        assert expected in out, out
    rc, out = run_validate("static_resources: [unclosed")
    assert rc == 1 and "YAML syntax error" in out
    rc, out = run_validate("static_resources: {}\n")
    assert rc == 0
    rc, out = run_validate("admin:\n  access_log_path: /tmp/a\n  address: {socket_address: "
                           "{address: 127.0.0.1, port_value: 0}}\nstatic_resources: {}\n")
    assert rc == 0
    assert "warning: admin.access_log_path (line 2): not implemented" in out


def test_bind_failure_is_an_error_not_a_crash(upstream):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    cfg = bootstrap([listener("ingress", routes_to())], [cluster("up", [upstream.port])])
    cfg["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(cfg, f)
    try:
        p = subprocess.run([CORRAL_BIN, "-c", f.name], capture_output=True, text=True, timeout=30)
    finally:
        os.unlink(f.name)
        s.close()
    assert p.returncode == 1
    assert "cannot listen on 127.0.0.1:%d" % port in p.stderr


def test_out_of_file_descriptors_pauses_accept_and_recovers(start_corral, upstream):
    """With a tiny fd limit, accept() fails with EMFILE. corral must not spin on the listening
    socket, must keep serving the connections it has, and must accept again once fds free up."""
    cfg = bootstrap([listener("ingress", routes_to())], [cluster("up", [upstream.port])])
    c = start_corral(cfg, nofile=40)
    held = []
    for _ in range(60):
        try:
            held.append(socket.create_connection(("127.0.0.1", c.port()), timeout=2))
        except OSError:
            break
    time.sleep(0.3)

    def cpu_seconds():
        with open(f"/proc/{c.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before = cpu_seconds()
    time.sleep(1.0)
    spent = cpu_seconds() - before
    assert spent < 0.5, f"corral used {spent:.2f} s of CPU in 1 s while out of fds (spinning?)"
    assert "accept failed" in c.stderr()
    for s in held:
        s.close()
    time.sleep(0.3)
    ok = raw_exchange(c.port(), b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(ok) == 200
