#!/usr/bin/env python3
"""Memory under monitoring: what being scraped costs a proxy, greenlight against HAProxy and nginx.

  python3 bench/scrape_memory_bench.py [--scrapes 200] [--build build] [--compare-build DIR]

Each proxy starts fresh in front of the same nginx backend and answers a few requests; then its
metrics are read --scrapes times, each on a connection of its own, as Prometheus does when its
scrape interval (15 s by default) is longer than the server's keep-alive timeout (greenlight's
admin API: 1 s). Each proxy's proportional set size (its processes together, shared pages once)
before the first scrape and after the last gives what serving its metrics left behind. The
endpoints: greenlight's admin API /metrics, HAProxy's built-in Prometheus exporter, nginx's
stub_status (nginx has no Prometheus output of its own). --compare-build DIR adds a greenlight
proxy from another build directory (e.g. an earlier commit built with `git worktree`).
"""
import argparse
import os
import tempfile
import time
import urllib.request

from benchlib import free_port, settled_pss, wait_http
import proxy_bench
from proxy_bench import nginx


def greenlight(tmp, build, backend_port, name):
    admin = free_port()
    proc, port, _ = proxy_bench.greenlight(tmp, build, backend_port, backend_port, 2, name, admin=admin)
    return proc, port, f"http://127.0.0.1:{admin}/metrics"


def haproxy(tmp, backend_port):
    stats = free_port()
    proc, port, _ = proxy_bench.haproxy(tmp, backend_port, backend_port, prometheus_port=stats)
    return proc, port, f"http://127.0.0.1:{stats}/metrics"


def nginx_proxy(tmp, backend_port):
    proc, port = proxy_bench.nginx_proxy(tmp, backend_port, server_extra="location = /status { stub_status; }")
    return proc, port, f"http://127.0.0.1:{port}/status"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scrapes", type=int, default=200)
    ap.add_argument("--build", default="build")
    ap.add_argument("--compare-build", help="another build directory, measured as a second greenlight")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="greenlight-scrape-bench-") as tmp:
        backend, backend_port = nginx(tmp, "backend", "ok")
        procs = [backend]
        try:
            wait_http(f"http://127.0.0.1:{backend_port}/")
            targets = [("greenlight", *greenlight(tmp, args.build, backend_port, "greenlight"))]
            if args.compare_build:
                label = f"greenlight ({os.path.basename(os.path.normpath(args.compare_build))})"
                targets.append((label, *greenlight(tmp, args.compare_build, backend_port, "compared")))
            targets += [("haproxy", *haproxy(tmp, backend_port)), ("nginx", *nginx_proxy(tmp, backend_port))]
            procs += [proc for _, proc, _, _ in targets]
            for name, proc, port, metrics in targets:
                wait_http(f"http://127.0.0.1:{port}/")
                wait_http(metrics)
                for _ in range(20):  # some traffic, so there is something to report
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                before = settled_pss(proc.pid, 5)
                size = 0
                started = time.monotonic()
                for _ in range(args.scrapes):
                    with urllib.request.urlopen(metrics, timeout=10) as r:  # a connection each
                        size = len(r.read())
                took = time.monotonic() - started
                after = settled_pss(proc.pid, 5)
                rows.append((name, size, before, after, took * 1e3 / args.scrapes))
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=15)
    print(f"Memory after {args.scrapes} scrapes, each on a new connection (proportional set size of the proxy's processes)\n")
    print("| proxy | metrics bytes | before MiB | after MiB | grew MiB | ms per scrape |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, size, before, after, ms in rows:
        print(f"| {name} | {size} | {before / 1024:.1f} | {after / 1024:.1f} | {(after - before) / 1024:.1f} | {ms:.2f} |")


if __name__ == "__main__":
    main()
