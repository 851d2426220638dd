"""The sandbox failure catalogue (issue 4): for each way a Go plugin can take down the process it
runs in (test/golang/plugins/crashers.go), in sandbox mode:

- the proxy is the same process and serves;
- the request that triggered the failure gets the expected status within its deadline;
- the next request to that plugin succeeds on a rebuilt runtime;
- a request to another listener without the plugin, and one through another plugin library,
  both in flight at the same moment, succeed;
- the failure's counter moved and the log names the cause.
"""

import os
import threading
import time

import pytest

from conftest import ROUTER, bootstrap, cluster, http_request, listener, wait_until
from test_golang import golang_filter, typed_struct

VICTIM = {"isolation": "sandbox", "processes": 1, "warm_spares": 1,
          "callback_timeout": "0.5s", "heartbeat_interval": "0.1s",
          "restart_backoff": {"base": "0.01s", "max": "0.1s"}}
ROUTE = [{"match": {"prefix": "/"}, "route": {"cluster": "up", "timeout": "5s"}}]


def catalogue_config(plugin, upstream_port, victim=None, config=None, routes=None):
    """Three listeners: `victim` runs the crashing plugin (library "victim"), `healthy` runs
    another plugin in its own library, `plain` has no Go plugin at all."""
    victim_filter = golang_filter(plugin, config, library_id="victim")
    healthy_filter = golang_filter("headers", typed_struct(greeting="ok"), library_id="healthy")
    cfg = bootstrap([
        listener("victim", routes or ROUTE, http_filters=[victim_filter, ROUTER]),
        listener("healthy", ROUTE, http_filters=[healthy_filter, ROUTER]),
        listener("plain", ROUTE),
    ], [cluster("up", [upstream_port])])
    cfg["corral"] = {"golang_libraries": {"victim": dict(VICTIM, **(victim or {})),
                                          "healthy": {"isolation": "sandbox"}}}
    return cfg


def sandboxes(c, library):
    status, body = c.admin("/golang/sandboxes")
    assert status == 200
    import json
    for lib in json.loads(body)["libraries"]:
        if lib["library_id"] == library:
            return lib
    raise AssertionError(f"no library {library} in {body}")


def ready_pids(c, library):
    return sorted(p["pid"] for p in sandboxes(c, library)["processes"] if p.get("ready"))


def counter(c, library, kind):
    return sandboxes(c, library)["counters"][kind]


def trigger_with_bystanders(c, path="/echo", expect_healthy=True):
    """Sends the crashing request while slow requests are in flight on the other listener and
    through the other library; returns (status, headers, body, seconds) of the crashing one."""
    results = {}

    def slow(name):
        r, body = http_request(c.port(name), "/slow?ms=400")
        results[name] = (r.status, body)

    threads = [threading.Thread(target=slow, args=(n,)) for n in ("healthy", "plain")]
    for t in threads:
        t.start()
    time.sleep(0.05)  # both in flight
    start = time.time()
    r, body = http_request(c.port("victim"), path, headers={"x-crash": "1"})
    took = time.time() - start
    for t in threads:
        t.join()
    if expect_healthy:
        assert results["healthy"] == (200, b"slow"), results
        assert results["plain"] == (200, b"slow"), results
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body, took


def check_recovered(c, proxy_pid):
    """The proxy is the same process and the plugin answers again (a rebuilt runtime)."""
    assert c.proc.pid == proxy_pid and c.proc.poll() is None
    assert wait_until(lambda: http_request(c.port("victim"), "/echo")[0].status == 200, timeout=5)
    assert http_request(c.port("plain"), "/echo")[0].status == 200


# (plugin, expected status, counter, words the log must have)
CRASHES = [
    ("crash-goroutine-panic", 503, "crash", "panic: panic in a plugin goroutine"),
    ("crash-map-writes", 503, "crash", "concurrent map writes"),
    ("crash-nil-go", 503, "crash", "go of nil func value"),
    ("crash-recursion", 503, "crash", "stack overflow"),
    ("crash-exit", 503, "crash", "exited with 3"),
    ("crash-log-fatal", 503, "crash", "log.Fatal in a plugin"),
    ("crash-segv", 503, "crash", "SIGSEGV"),
]


@pytest.mark.parametrize("plugin,status,kind,words", CRASHES, ids=[c[0] for c in CRASHES])
def test_crash_costs_only_the_requests_on_that_process(start_corral, upstream, plugin, status,
                                                        kind, words):
    c = start_corral(catalogue_config(plugin, upstream.port))
    proxy_pid = c.proc.pid
    before = ready_pids(c, "victim")
    assert http_request(c.port("victim"), "/echo")[0].status == 200
    code, headers, _, took = trigger_with_bystanders(c)
    assert code == status and headers.get("x-corral-sandbox") == "crashed", (code, headers)
    assert took < 2.0
    check_recovered(c, proxy_pid)
    assert counter(c, "victim", kind) >= 1
    assert counter(c, "healthy", "crash") == 0
    assert wait_until(lambda: words in c.stderr()), c.stderr()[-3000:]
    assert "[sandbox victim (" + plugin + ")" in c.stderr()
    # The dead process was replaced (the spare took over, a new one started).
    assert wait_until(lambda: len(ready_pids(c, "victim")) == 2 and ready_pids(c, "victim") != before)


def test_allocation_past_the_memory_limit(start_corral, upstream):
    c = start_corral(catalogue_config("crash-alloc", upstream.port,
                                      victim={"memory_limit_bytes": 128 << 20}))
    proxy_pid = c.proc.pid
    code, headers, _, took = trigger_with_bystanders(c)
    assert code == 503 and headers.get("x-corral-sandbox") == "crashed"
    assert took < 5.0
    check_recovered(c, proxy_pid)
    assert counter(c, "victim", "oom") == 1 and counter(c, "victim", "crash") == 0
    assert "out of memory" in c.stderr()


@pytest.mark.parametrize("plugin", ["crash-spin", "crash-deadlock"])
def test_a_hung_callback_gets_504_and_the_process_is_replaced(start_corral, upstream, plugin):
    # The stream's deadline (0.3 s) comes before the heartbeat's verdict (3 x 0.25 s).
    c = start_corral(catalogue_config(plugin, upstream.port, victim={
        "callback_timeout": "0.3s", "heartbeat_interval": "0.25s"}))
    proxy_pid = c.proc.pid
    before = ready_pids(c, "victim")
    code, headers, _, took = trigger_with_bystanders(c)
    assert code == 504 and headers.get("x-corral-sandbox") == "timeout", (code, headers)
    assert 0.25 < took < 1.0
    assert counter(c, "victim", "timeout") == 1
    # Three missed heartbeats and it is killed, then replaced.
    assert wait_until(lambda: counter(c, "victim", "killed") == 1)
    check_recovered(c, proxy_pid)
    assert wait_until(lambda: len(ready_pids(c, "victim")) == 2 and before[0] not in ready_pids(c, "victim"))
    assert "heartbeat: no answer" in c.stderr() and "callback_timeout" in c.stderr()


def test_panic_in_a_phase_is_500_and_the_process_stays(start_corral, upstream):
    c = start_corral(catalogue_config("panic", upstream.port))
    pids = ready_pids(c, "victim")
    r, body = http_request(c.port("victim"), "/echo", headers={"x-test-panic-phase": "decode-headers"})
    assert r.status == 500 and body == b"error happened in filter\r\n"
    assert http_request(c.port("victim"), "/echo")[0].status == 200
    assert ready_pids(c, "victim") == pids
    assert counter(c, "victim", "crash") == 0
    assert wait_until(lambda: c.stats().get("http.ingress.golang.panic_error") == 1)


def test_panic_in_parse_leaves_the_proxy_serving(start_corral, upstream):
    # Parse runs when a sandbox process starts: every start dies, the breaker stops the restarts,
    # and the plugin's requests fail closed. Nothing else is touched.
    cfg = catalogue_config("crash-parse", upstream.port,
                           config=typed_struct(panic_in_parse="yes"))
    c = start_corral(cfg)
    r, _ = http_request(c.port("victim"), "/echo")
    assert r.status == 503 and r.getheader("x-corral-sandbox") in ("unavailable", "crashed")
    assert http_request(c.port("healthy"), "/echo")[0].status == 200
    assert http_request(c.port("plain"), "/echo")[0].status == 200
    assert counter(c, "victim", "crash") >= 1
    assert "panic: panic in Parse" in c.stderr()
    assert wait_until(lambda: counter(c, "victim", "fail_closed") >= 1)


def test_panic_in_the_filter_factory(start_corral, upstream):
    routes = [{"name": "crash-factory", "match": {"prefix": "/crash"},
               "route": {"cluster": "up", "timeout": "5s"}}] + ROUTE
    c = start_corral(catalogue_config("crash-factory", upstream.port, routes=routes))
    proxy_pid = c.proc.pid
    results = {}
    t = threading.Thread(target=lambda: results.update(
        healthy=http_request(c.port("healthy"), "/slow?ms=400")[0].status))
    t.start()
    time.sleep(0.05)
    r, _ = http_request(c.port("victim"), "/crash")
    t.join()
    assert r.status == 503 and r.getheader("x-corral-sandbox") == "crashed"
    assert results["healthy"] == 200
    check_recovered(c, proxy_pid)
    assert "panic: panic in the filter factory" in c.stderr()


def test_a_noisy_plugin_is_logged_in_bounds(start_corral, upstream):
    c = start_corral(catalogue_config("crash-noisy", upstream.port,
                                      victim={"callback_timeout": "10s"}))
    proxy_pid = c.proc.pid
    code, _, _, _ = trigger_with_bystanders(c)
    assert code == 200
    check_recovered(c, proxy_pid)
    assert counter(c, "victim", "crash") == 0
    assert "noisy stdout" in c.stderr() and "noisy stderr" in c.stderr()
    # 10,000 lines of 1 KB were written; the proxy logs a bounded share and says what it dropped.
    assert wait_until(lambda: "lines dropped" in c.stderr())
    assert len(c.stderr()) < 4 << 20


@pytest.mark.parametrize("plugin,words", [("crash-exec", "execve: "),
                                          ("crash-proc-mem", "read of the proxy's memory: ")])
def test_denied_operations_fail_closed(start_corral, upstream, plugin, words):
    c = start_corral(catalogue_config(plugin, upstream.port))
    proxy_pid = c.proc.pid
    pids = ready_pids(c, "victim")
    code, _, body, _ = trigger_with_bystanders(c)
    assert code == 500 and body.startswith(words.encode()), body
    assert b"allowed" not in body
    assert b"permission denied" in body or b"operation not permitted" in body, body
    check_recovered(c, proxy_pid)
    assert ready_pids(c, "victim") == pids  # denied, not killed


def test_sandbox_processes_are_gone_after_the_proxy(start_corral, upstream):
    c = start_corral(catalogue_config("crash-exit", upstream.port))
    pids = ready_pids(c, "victim") + ready_pids(c, "healthy")
    assert len(pids) == 4
    assert c.stop() == 0
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"sandbox process {pid} outlived the proxy"


def test_fail_open_lets_the_stream_go_on_without_the_plugin(start_corral, upstream):
    c = start_corral(catalogue_config("crash-goroutine-panic", upstream.port,
                                      victim={"on_failure": "fail_open"}))
    # The plugin holds the request (Running) when its process dies: it goes on unfiltered,
    # its body too.
    r, body = http_request(c.port("victim"), "/echo", method="POST", body=b"payload",
                           headers={"x-crash": "1"})
    assert r.status == 200 and r.getheader("x-corral-sandbox") is None
    assert b"payload" in body
    assert counter(c, "victim", "fail_open") == 1 and counter(c, "victim", "fail_closed") == 0
    assert wait_until(lambda: http_request(c.port("victim"), "/echo")[0].status == 200)


def test_fail_open_with_no_process_ready(start_corral, upstream):
    c = start_corral(catalogue_config("crash-parse", upstream.port,
                                      victim={"on_failure": "fail_open"},
                                      config=typed_struct(panic_in_parse="yes")))
    r, _ = http_request(c.port("victim"), "/echo")
    assert r.status == 200
    assert counter(c, "victim", "fail_open") >= 1
