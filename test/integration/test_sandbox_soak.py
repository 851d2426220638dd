"""A bounded soak (issue 4): while clients keep a healthy plugin and a plain listener busy, a
crashing plugin is hit in a loop until its sandbox has been rebuilt 1,000 times. The healthy
traffic sees no error, and the proxy's memory and file descriptors stay flat."""

import os
import threading
import time

from conftest import http_request, wait_until
from test_sandbox_failures import catalogue_config, counter

RESTARTS = int(os.environ.get("CORRAL_SOAK_RESTARTS", "1000"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_thousand_restarts_cost_the_healthy_traffic_nothing(start_corral, upstream):
    c = start_corral(catalogue_config("crash-exit", upstream.port, victim={
        "restart_backoff": {"base": "0.001s", "max": "0.01s"}, "callback_timeout": "5s"}),
        concurrency=2,
        # Under AddressSanitizer freed memory waits in a quarantine (256 MB by default) that
        # would read as growth; without it the RSS shows what is really kept. No effect otherwise.
        env={"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0"})
    pid = c.proc.pid
    stop = threading.Event()
    healthy = {"ok": 0, "bad": []}

    def client(name):
        while not stop.is_set():
            try:
                r, body = http_request(c.port(name), "/echo")
                if r.status == 200:
                    healthy["ok"] += 1
                else:
                    healthy["bad"].append((name, r.status, body[:200]))
            except Exception as e:  # a refused or reset connection is an error too
                healthy["bad"].append((name, repr(e)))

    clients = [threading.Thread(target=client, args=(n,)) for n in ("healthy", "plain")]
    for t in clients:
        t.start()
    try:
        baseline = None
        deadline = time.time() + 600
        while counter(c, "victim", "restarts") < RESTARTS and time.time() < deadline:
            r, _ = http_request(c.port("victim"), "/echo", headers={"x-crash": "1"})
            assert r.status == 503, r.status
            if baseline is None and counter(c, "victim", "restarts") >= 100:
                baseline = (rss_kb(pid), open_fds(pid))  # warmed up: pools, buffers, stats
        restarts = counter(c, "victim", "restarts")
    finally:
        stop.set()
        for t in clients:
            t.join()
    assert restarts >= RESTARTS
    assert healthy["bad"] == [], healthy["bad"][:5]
    assert healthy["ok"] > 100
    assert c.proc.pid == pid and c.proc.poll() is None
    # Flat: the last restarts are through (no fd of a dead process is left), then compare.
    assert wait_until(lambda: len([p for p in _pids(c) if p]) == 2)
    rss, fds = rss_kb(pid), open_fds(pid)
    assert fds <= baseline[1] + 2, (baseline, fds)
    assert rss - baseline[0] < 16 * 1024, f"RSS grew {baseline[0]} -> {rss} kB"
    assert http_request(c.port("victim"), "/echo")[0].status == 200


def _pids(c):
    import json
    libs = json.loads(c.admin("/golang/sandboxes")[1])["libraries"]
    victim = [lib for lib in libs if lib["library_id"] == "victim"][0]
    return [p["pid"] for p in victim["processes"] if p.get("ready")]
