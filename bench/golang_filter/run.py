#!/usr/bin/env python3
"""The Golang filter's cost, as issue 3 asks: one corral with no filter, one with a no-op Go
filter, one with a basic-auth Go filter (test/golang/plugins), same run, same upstream.

Same method as bench/proxy_vs_nginx (whose helpers this imports): one worker each
(corral --concurrency 1) pinned to core 0, wrk and an nginx `return 200` upstream on core 1,
keep-alive on both hops, interleaved rounds with the order rotated. Reports requests/s, CPU
microseconds per request, and the ratios against no filter (median, min-max over rounds). Then
runs build/bench/golang_filter/host_call_bench (one host->Go call from a C thread).

Usage: bench/golang_filter/run.py [--rounds 7] [--duration 5] [--connections 50]
"""

import argparse
import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
_spec = importlib.util.spec_from_file_location("proxy_bench", os.path.join(HERE, "..", "proxy_vs_nginx", "run.py"))
base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(base)

PLUGINS = os.path.join(ROOT, "build", "source", "golang", "corral_test_plugins.so")
HOST_CALL_BENCH = os.path.join(ROOT, "build", "bench", "golang_filter", "host_call_bench")
AUTH = "Authorization: Basic dTpw"  # u:p, accepted by the basic-auth plugin


def golang_filter(plugin, config=None):
    cfg = ""
    if config:
        cfg = ("\n              plugin_config:\n"
               "                \"@type\": type.googleapis.com/xds.type.v3.TypedStruct\n"
               f"                value: {config}")
    return f"""
          - name: envoy.filters.http.golang
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.golang.v3alpha.Config
              library_id: bench
              library_path: {PLUGINS}
              plugin_name: {plugin}{cfg}"""


def corral_config(port, up_port, filters, isolation="in_process", library_options=""):
    return f"""
corral:
  golang_libraries:
    bench: {{isolation: {isolation}{library_options}}}
static_resources:
  listeners:
  - name: ingress
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - {{name: all, domains: ["*"], routes: [{{match: {{prefix: "/"}}, route: {{cluster: up}}}}]}}
          http_filters:{filters}
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: up
    connect_timeout: 1s
    circuit_breakers: {{thresholds: [{{max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}}]}}
    load_assignment:
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {up_port}}}}}}}}}]}}]
"""


def prepare(prefix, needed):
    """Tools checked, fd limit raised; returns (workdir, upstream port, [] for processes)."""
    base.ensure_tools()
    for f in needed:
        if not os.path.exists(f):
            sys.exit(f"{f} is missing: run scripts/setup.sh first")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return tempfile.mkdtemp(prefix=prefix), base.free_port(), []


def start_upstream(work, up_port):
    """The nginx `return 200` upstream, on core 1."""
    return base.start_nginx("upstream", work, f"""
  server {{ listen 127.0.0.1:{up_port} reuseport backlog=4096;
    location / {{ default_type text/plain; return 200 '{base.BODY.strip()}\\n'; }} }}""", cpu=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    work, up_port, procs = prepare("corral-golang-bench-", (base.CORRAL, PLUGINS, HOST_CALL_BENCH))
    try:
        procs.append(start_upstream(work, up_port))
        variants = {"none": "", "noop": golang_filter("noop"),
                    "basic-auth": golang_filter("basic-auth", "{user: u, password: p}")}
        targets = {}
        for name, filters in variants.items():
            port = base.free_port()
            cfg = os.path.join(work, f"{name}.yaml")
            with open(cfg, "w") as f:
                f.write(corral_config(port, up_port, filters))
            p = subprocess.Popen(["taskset", "-c", "0", base.CORRAL, "-c", cfg, "--concurrency", "1",
                                  "--log-level", "warning"], stdout=subprocess.DEVNULL)
            procs.append(p)
            targets[name] = (port, [p.pid])
        base.wait_port(up_port)
        for port, _ in targets.values():
            base.wait_port(port)
        time.sleep(0.3)
        print(f"# corral --concurrency 1 pinned to core 0; wrk and upstream nginx on core 1; "
              f"wrk -t1 -c{args.connections} -d{args.duration}s; {args.rounds} rounds interleaved")
        for port, _ in targets.values():  # warm-up
            base.run_wrk(port, 1, args.connections, headers=(AUTH,))
        results = {n: [] for n in targets}
        names = list(targets)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                port, pids = targets[name]
                t0 = base.cpu_ticks(pids)
                rps, total = base.run_wrk(port, args.duration, args.connections, headers=(AUTH,))
                cpu_us = (base.cpu_ticks(pids) - t0) / base.CLK_TCK * 1e6 / total
                results[name].append((rps, cpu_us))
                print(f"round {r + 1} {name:10s} {rps:10.0f} req/s  {cpu_us:6.2f} us CPU/req", flush=True)
        rss = {n: base.rss_kb(pids, "VmHWM") for n, (_, pids) in targets.items()}
        med = lambda n, i: statistics.median(v[i] for v in results[n])
        print()
        print("| figure | no filter | no-op Go filter | basic-auth Go filter |")
        print("|---|---|---|---|")
        print(f"| requests/s (median) | {med('none', 0):.0f} | {med('noop', 0):.0f} | {med('basic-auth', 0):.0f} |")
        print(f"| CPU us/request (median) | {med('none', 1):.2f} | {med('noop', 1):.2f} | {med('basic-auth', 1):.2f} |")
        print(f"| peak RSS (KB) | {rss['none']} | {rss['noop']} | {rss['basic-auth']} |")
        print()
        for name in ("noop", "basic-auth"):
            tp = [x[0] / y[0] for x, y in zip(results[name], results["none"])]
            print(f"throughput {name}/none: median {statistics.median(tp):.3f} "
                  f"(min {min(tp):.3f}, max {max(tp):.3f})")
        print()
        out = subprocess.run(["taskset", "-c", "0", HOST_CALL_BENCH, PLUGINS], capture_output=True,
                             text=True, check=True).stdout
        print(out.strip())
    finally:
        base.stop_processes(procs)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
