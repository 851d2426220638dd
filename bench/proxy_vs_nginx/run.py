#!/usr/bin/env python3
"""corral vs nginx vs direct, as ../../../shared/BENCHMARKS.md asks.

One run, interleaved rounds (direct, nginx, corral, direct, ...), same tiny upstream (an nginx
`return 200` server), one worker each (corral --concurrency 1, nginx worker_processes 1),
keep-alive on both hops, access logs off. Proxies are pinned to core 0; wrk and the upstream to
core 1. Reports requests/s, proxy CPU microseconds per request (from /proc/PID/stat), RSS, the
ratios (median and min-max over rounds), and RSS per idle keep-alive connection.

Usage: bench/proxy_vs_nginx/run.py [--rounds 7] [--duration 5] [--connections 50] [--idle 10000]
                                  [--latency-rounds 3]
Latency is measured at fixed rates (50% and 80% of nginx's median peak) with h2load --h1 --rps,
never at saturation. Needs wrk, nginx and h2load (installed with apt-get if missing) and a built
build/corral.
"""

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORRAL = os.path.join(ROOT, "build", "corral")
CLK_TCK = os.sysconf("SC_CLK_TCK")
BODY = "hello from the upstream\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ensure_tools():
    need = [p for p, b in (("wrk", "wrk"), ("nginx-light", "nginx"), ("nghttp2-client", "h2load"))
            if not shutil.which(b)]
    if need:
        subprocess.run(["apt-get", "install", "-y", "-qq", *need], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        subprocess.run(["pkill", "-x", "nginx"])  # the package starts its own service


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def nginx_conf(workdir, body):
    return f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 20000; }}
worker_rlimit_nofile 30000;
http {{
  access_log off;
  keepalive_requests 1000000;
  {body}
}}
"""


def start_nginx(name, workdir, http_body, cpu):
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(d, http_body))
    p = subprocess.Popen(["taskset", "-c", str(cpu), "nginx", "-g", "daemon off;", "-c", conf,
                          "-p", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def rss_kb(pids, key="VmRSS"):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
    return total


def run_wrk(port, duration, connections, headers=()):
    hs = [a for h in headers for a in ("-H", h)]
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
                          *hs, f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock_err = re.search(r"Socket errors: (.*)", out)
    if errors or sock_err:
        raise RuntimeError(f"wrk reported errors against {port}:\n{out}")
    return rps, total


def run_h2load_latency(port, total_rps, duration, connections, workdir):
    """Fixed-rate HTTP/1.1 load; returns (p50, p99) request latency in microseconds."""
    log = os.path.join(workdir, f"h2load-{port}.log")
    per_client = max(1, round(total_rps / connections))
    subprocess.run(["taskset", "-c", "1", "h2load", "--h1", "-c", str(connections),
                    f"--rps={per_client}", "-D", str(duration), "--log-file", log,
                    f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True)
    lat = []
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "200":
                lat.append(int(parts[2]))
    os.unlink(log)
    if not lat:
        raise RuntimeError(f"h2load against {port} logged no successful request")
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def idle_rss_per_conn(port, pids, n):
    """Opens n keep-alive connections, one request each, then measures the RSS growth."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
    # Warm-up so allocator caches are in place before the baseline.
    warm = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    for s in warm:
        s.close()
    time.sleep(0.5)
    before = rss_kb(pids)
    socks = []
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(req)
        socks.append(s)
    for s in socks:
        data = b""
        while BODY.encode() not in data:
            data += s.recv(4096)
    time.sleep(1.0)
    after = rss_kb(pids)
    for s in socks:
        s.close()
    return (after - before) * 1024 / n


def stop_processes(procs):
    """procs[0] is the upstream nginx (SIGQUIT: graceful); the rest get SIGTERM. All reaped."""
    for p in procs:
        p.send_signal(signal.SIGTERM if p is not procs[0] else signal.SIGQUIT)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--latency-rounds", type=int, default=3,
                    help="fixed-rate rounds at 50%% and 80%% of nginx's peak (h2load); 0: skip")
    args = ap.parse_args()
    ensure_tools()
    if not os.path.exists(CORRAL):
        sys.exit("build/corral is missing: run scripts/setup.sh first")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by corral and nginx
    work = tempfile.mkdtemp(prefix="corral-bench-")
    up_port, nginx_port, corral_port, admin_port = free_port(), free_port(), free_port(), free_port()
    procs = []
    try:
        upstream = start_nginx("upstream", work, f"""
  server {{ listen 127.0.0.1:{up_port} reuseport backlog=4096;
    location / {{ default_type text/plain; return 200 '{BODY.strip()}\\n'; }} }}""", cpu=1)
        procs.append(upstream)
        proxy = start_nginx("proxy", work, f"""
  upstream backend {{ server 127.0.0.1:{up_port}; keepalive 64; }}
  server {{ listen 127.0.0.1:{nginx_port} reuseport backlog=4096;
    location / {{ proxy_pass http://backend; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }} }}""", cpu=0)
        procs.append(proxy)
        cfg = os.path.join(work, "corral.yaml")
        with open(cfg, "w") as f:
            f.write(f"""
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin_port}}}}}}}
static_resources:
  listeners:
  - name: ingress
    address: {{socket_address: {{address: 127.0.0.1, port_value: {corral_port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - {{name: all, domains: ["*"], routes: [{{match: {{prefix: "/"}}, route: {{cluster: up}}}}]}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: up
    connect_timeout: 1s
    circuit_breakers: {{thresholds: [{{max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}}]}}
    load_assignment:
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {up_port}}}}}}}}}]}}]
""")
        corral = subprocess.Popen(["taskset", "-c", "0", CORRAL, "-c", cfg, "--concurrency", "1",
                                   "--log-level", "warning"], stdout=subprocess.DEVNULL)
        procs.append(corral)
        for p in (up_port, nginx_port, corral_port):
            wait_port(p)
        time.sleep(0.3)
        nginx_pids = [proxy.pid] + children(proxy.pid)
        targets = {"direct": (up_port, None), "nginx": (nginx_port, nginx_pids),
                   "corral": (corral_port, [corral.pid])}
        print(f"# proxies pinned to core 0; wrk and upstream nginx to core 1; "
              f"wrk -t1 -c{args.connections} -d{args.duration}s; {args.rounds} rounds interleaved, "
              f"order rotated each round")
        for name, (port, _) in targets.items():  # warm-up
            run_wrk(port, 1, args.connections)
        results = {n: [] for n in targets}
        names = list(targets)
        for r in range(args.rounds):
            # Rotate the order each round so no side always runs first (or right after another).
            for name in names[r % len(names):] + names[:r % len(names)]:
                port, pids = targets[name]
                t0 = cpu_ticks(pids) if pids else 0
                rps, total = run_wrk(port, args.duration, args.connections)
                cpu_us = ((cpu_ticks(pids) - t0) / CLK_TCK * 1e6 / total) if pids else float("nan")
                results[name].append((rps, cpu_us))
                print(f"round {r + 1} {name:7s} {rps:10.0f} req/s  {cpu_us:6.2f} us CPU/req", flush=True)
        latency = {}
        if args.latency_rounds:
            peak = statistics.median(v[0] for v in results["nginx"])
            for frac in (0.5, 0.8):
                for r in range(args.latency_rounds):
                    for name in (("nginx", "corral") if r % 2 == 0 else ("corral", "nginx")):
                        p50, p99 = run_h2load_latency(targets[name][0], peak * frac, args.duration,
                                                      args.connections, work)
                        latency.setdefault((frac, name), []).append((p50, p99))
                        print(f"latency {int(frac * 100)}% of nginx peak ({peak * frac:.0f} req/s) "
                              f"{name:7s} p50 {p50} us  p99 {p99} us", flush=True)
        rss = {"nginx": rss_kb(nginx_pids, "VmHWM"), "corral": rss_kb([corral.pid], "VmHWM")}
        idle = {}
        if args.idle:
            idle["corral"] = idle_rss_per_conn(corral_port, [corral.pid], args.idle)
            idle["nginx"] = idle_rss_per_conn(nginx_port, nginx_pids, args.idle)

        def ratios(a, b, idx):
            return [x[idx] / y[idx] for x, y in zip(results[a], results[b])]

        print()
        print("| figure | direct | nginx | corral |")
        print("|---|---|---|---|")
        med = lambda n, i: statistics.median(v[i] for v in results[n])
        print(f"| requests/s (median) | {med('direct', 0):.0f} | {med('nginx', 0):.0f} | {med('corral', 0):.0f} |")
        print(f"| proxy CPU us/request (median) | - | {med('nginx', 1):.2f} | {med('corral', 1):.2f} |")
        print(f"| proxy peak RSS (KB) | - | {rss['nginx']} | {rss['corral']} |")
        if idle:
            print(f"| RSS per idle keep-alive connection ({args.idle} conns, bytes) | - | "
                  f"{idle['nginx']:.0f} | {idle['corral']:.0f} |")
        for (frac, name) in sorted({k for k in latency if k[1] == "nginx"}):
            med = lambda n, i: statistics.median(v[i] for v in latency[(frac, n)])
            print(f"| latency p50 / p99 at {int(frac * 100)}% of nginx peak (us, median of rounds) | - | "
                  f"{med('nginx', 0):.0f} / {med('nginx', 1):.0f} | "
                  f"{med('corral', 0):.0f} / {med('corral', 1):.0f} |")
        print()
        tp = ratios("corral", "nginx", 0)
        cpu = ratios("corral", "nginx", 1)
        print(f"throughput corral/nginx: median {statistics.median(tp):.3f} (min {min(tp):.3f}, max {max(tp):.3f})")
        print(f"CPU per request corral/nginx: median {statistics.median(cpu):.3f} (min {min(cpu):.3f}, max {max(cpu):.3f})")
    finally:
        stop_processes(procs)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
