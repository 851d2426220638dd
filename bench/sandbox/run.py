#!/usr/bin/env python3
"""The sandbox's cost, as issue 4 asks: one corral with no filter, one with a no-op Go filter
in-process, one with the same filter in sandbox mode — same run, same upstream.

Method as bench/golang_filter (whose helpers this imports): corral --concurrency 1 pinned to
core 0 (its sandbox processes inherit that core), wrk and an nginx upstream on core 1,
keep-alive, interleaved rounds with the order rotated. Then:
- latency at 50% of the in-process peak (h2load fixed rate): p50/p99, in-process vs sandbox;
- recovery: a sandboxed plugin killed by a request (test plugin crash-exit), time from the
  failed response to the next good one on that plugin (a warm spare takes over), repeated;
- base RSS of one idle sandbox process.

Targets (issue 4): sandbox >= 0.85x in-process throughput; added p50 <= 30 us and p99 <= 100 us
at 50% load; death -> next good response <= 10 ms with a warm spare; sandbox RSS <= 15 MB.

Usage: bench/sandbox/run.py [--rounds 5] [--duration 5] [--connections 50]
"""

import argparse
import http.client
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("golang_bench", os.path.join(HERE, "..", "golang_filter", "run.py"))
gb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gb)
base = gb.base


def get(port, path="/", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def recovery_ms(port, n):
    """Time from the response that reports a dead sandbox to the next good response."""
    times = []
    for _ in range(n):
        if get(port, headers={"x-crash": "1"}) != 503:
            raise RuntimeError("the crash request did not fail as expected")
        t0 = time.perf_counter()
        while get(port) != 200:
            pass
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.2)  # the replacement becomes the next warm spare
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--recoveries", type=int, default=20)
    args = ap.parse_args()
    work, up_port, procs = gb.prepare("corral-sandbox-bench-", (base.CORRAL, gb.PLUGINS))
    try:
        procs.append(gb.start_upstream(work, up_port))
        variants = {
            "none": gb.corral_config(base.free_port(), up_port, ""),
            "in_process": gb.corral_config(base.free_port(), up_port, gb.golang_filter("noop")),
            "sandbox": gb.corral_config(base.free_port(), up_port, gb.golang_filter("noop"), "sandbox"),
            "crash": gb.corral_config(base.free_port(), up_port, gb.golang_filter("crash-exit"),
                                      "sandbox", ", restart_backoff: {base: 0.001s, max: 0.01s}"),
        }
        targets = {}
        for name, cfg_text in variants.items():
            port = int(cfg_text.split("port_value: ")[1].split("}")[0])
            cfg = os.path.join(work, f"{name}.yaml")
            with open(cfg, "w") as f:
                f.write(cfg_text)
            p = subprocess.Popen(["taskset", "-c", "0", base.CORRAL, "-c", cfg, "--concurrency", "1",
                                  "--log-level", "critical"], stdout=subprocess.DEVNULL)
            procs.append(p)
            targets[name] = (port, p)
        base.wait_port(up_port)
        for port, _ in targets.values():
            base.wait_port(port)
        time.sleep(0.5)
        bench = ["none", "in_process", "sandbox"]
        print(f"# corral --concurrency 1 pinned to core 0 (sandbox processes inherit it); wrk and "
              f"upstream nginx on core 1; wrk -t1 -c{args.connections} -d{args.duration}s; "
              f"{args.rounds} rounds interleaved")
        for name in bench:  # warm-up
            base.run_wrk(targets[name][0], 1, args.connections)
        results = {n: [] for n in bench}
        for r in range(args.rounds):
            for name in bench[r % 3:] + bench[:r % 3]:
                port, p = targets[name]
                pids = [p.pid] + base.children(p.pid)
                t0 = base.cpu_ticks(pids)
                rps, total = base.run_wrk(port, args.duration, args.connections)
                cpu_us = (base.cpu_ticks(pids) - t0) / base.CLK_TCK * 1e6 / total
                results[name].append((rps, cpu_us))
                print(f"round {r + 1} {name:10s} {rps:10.0f} req/s  {cpu_us:6.2f} us CPU/req "
                      f"(proxy + sandboxes)", flush=True)
        med = lambda n, i: statistics.median(v[i] for v in results[n])
        half = med("in_process", 0) / 2
        lat = {}
        for name in ("in_process", "sandbox"):
            lat[name] = base.run_h2load_latency(targets[name][0], half, args.duration, 20, work)
        rec = recovery_ms(targets["crash"][0], args.recoveries)
        sandboxes = base.children(targets["sandbox"][1].pid)
        sandbox_rss = [base.rss_kb([c]) for c in sandboxes]
        # Most of a sandbox's RSS is file-backed and shared (the plugin .so, libprotobuf, libc):
        # its own memory is the anonymous part.
        sandbox_anon = [base.rss_kb([c], "RssAnon") for c in sandboxes]
        proxy_rss = {n: base.rss_kb([targets[n][1].pid]) for n in bench}
        print()
        print("| figure | no filter | no-op Go in-process | no-op Go in sandbox |")
        print("|---|---|---|---|")
        print(f"| requests/s (median) | {med('none', 0):.0f} | {med('in_process', 0):.0f} | {med('sandbox', 0):.0f} |")
        print(f"| CPU us/request, proxy + sandboxes (median) | {med('none', 1):.2f} | {med('in_process', 1):.2f} | {med('sandbox', 1):.2f} |")
        print(f"| latency p50 / p99 at {half:.0f} req/s (us) | - | {lat['in_process'][0]} / {lat['in_process'][1]} | {lat['sandbox'][0]} / {lat['sandbox'][1]} |")
        print(f"| proxy RSS (KB) | {proxy_rss['none']} | {proxy_rss['in_process']} | {proxy_rss['sandbox']} |")
        print()
        tp = [s[0] / i[0] for s, i in zip(results["sandbox"], results["in_process"])]
        print(f"throughput sandbox/in_process: median {statistics.median(tp):.3f} "
              f"(min {min(tp):.3f}, max {max(tp):.3f})  [target >= 0.85]")
        print(f"added latency at 50% load: p50 {lat['sandbox'][0] - lat['in_process'][0]} us "
              f"[target <= 30], p99 {lat['sandbox'][1] - lat['in_process'][1]} us [target <= 100]")
        print(f"death -> next good response (warm spare), {len(rec)} times: median "
              f"{statistics.median(rec):.2f} ms, max {max(rec):.2f} ms  [target <= 10]")
        print(f"sandbox process RSS (KB): {sandbox_rss}, of which anonymous {sandbox_anon}  "
              f"[target <= 15 MB]")
    finally:
        base.stop_processes(procs)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
