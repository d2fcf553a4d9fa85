#!/usr/bin/env python3
"""Probe throughput and cost: greenlight next to prometheus-blackbox-exporter, same targets,
same run, one after the other on this machine.

Targets are N URLs on a local nginx (started here on 127.0.0.1, a port it picks). greenlight
probes them itself; blackbox_exporter is driven by bench/blackbox_driver the way Prometheus
would (each target once per interval, spread, keep-alive). Reported: probes/s, CPU seconds per
1,000 probes (the prober process only, from /proc), peak RSS, scheduling lateness p50/p99.

  python3 bench/probe_bench.py [--targets 2000] [--interval-ms 1000] [--seconds 30]
                               [--memory-targets 10000] [--build build]
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import cpu_seconds, free_port, peak_rss_mib, wait_http


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def start_nginx(tmp):
    port = free_port()
    prefix = os.path.join(tmp, "nginx")
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes 1; pid {prefix}/nginx.pid; error_log {prefix}/error.log;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
  server {{ listen 127.0.0.1:{port} backlog=4096; keepalive_requests 100000;
    location / {{ default_type application/json; return 200 '{{"status":"ok"}}'; }} }}
}}
""")
    p = subprocess.Popen(["nginx", "-c", conf, "-p", prefix], stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/t/0")
    return p, port


def histogram_quantiles(text, name, before):
    """p50/p99 from a Prometheus histogram's bucket deltas (linear within a bucket)."""
    buckets = {}
    for m in re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M):
        buckets[float(m.group(1))] = float(m.group(2))
    delta = sorted((le, c - before.get(le, 0)) for le, c in buckets.items())
    total = delta[-1][1] if delta else 0
    out = []
    for q in (0.5, 0.99):
        rank, prev_le, prev_c = q * total, 0.0, 0.0
        for le, c in delta:
            if c >= rank:
                if le == float("inf"):
                    out.append(prev_le * 1000)
                else:
                    frac = 0 if c == prev_c else (rank - prev_c) / (c - prev_c)
                    out.append((prev_le + (le - prev_le) * frac) * 1000)
                break
            prev_le, prev_c = le, c
    return out, buckets


def metric_sum(text, name):
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def run_greenlight(args, tmp, nginx_port, targets, interval_ms, seconds, warmup):
    admin = free_port()
    cfg = os.path.join(tmp, f"greenlight-{targets}.yaml")
    with open(cfg, "w") as f:
        f.write(f"log: {{level: warn}}\nadmin: {{listen: 127.0.0.1:{admin}, public_metrics: true}}\n")
        f.write(f"probe_defaults: {{interval: {interval_ms}ms, timeout: {min(interval_ms, 1000)}ms}}\nprobes:\n")
        for i in range(targets):
            f.write(f"  - {{name: t{i}, url: 'http://127.0.0.1:{nginx_port}/t/{i}'}}\n")
    p = subprocess.Popen([os.path.join(args.build, "app", "greenlight"), "run", "--config", cfg])
    try:
        wait_http(f"http://127.0.0.1:{admin}/readyz")
        time.sleep(warmup)
        m0 = get(f"http://127.0.0.1:{admin}/metrics")
        c0, r0, f0 = cpu_seconds(p.pid), metric_sum(m0, "greenlight_probe_runs_total"), metric_sum(m0, "greenlight_probe_failures_total")
        _, b0 = histogram_quantiles(m0, "greenlight_probe_scheduling_lateness_seconds", {})
        t0 = time.monotonic()
        time.sleep(seconds)
        m1 = get(f"http://127.0.0.1:{admin}/metrics")
        c1, r1, f1 = cpu_seconds(p.pid), metric_sum(m1, "greenlight_probe_runs_total"), metric_sum(m1, "greenlight_probe_failures_total")
        elapsed = time.monotonic() - t0
        (p50, p99), _ = histogram_quantiles(m1, "greenlight_probe_scheduling_lateness_seconds", b0)
        runs = r1 - r0
        return {"probes_per_s": runs / elapsed, "cpu_s_per_1000": (c1 - c0) / runs * 1000 if runs else float("nan"),
                "failed": f1 - f0, "runs": runs, "peak_rss_mib": peak_rss_mib(p.pid),
                "lateness_p50_ms": p50, "lateness_p99_ms": p99}
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)


def run_blackbox(args, tmp, nginx_port, targets, interval_ms, seconds, warmup):
    port = free_port()
    cfg = os.path.join(tmp, "blackbox.yml")
    with open(cfg, "w") as f:
        f.write(f"modules:\n  http_2xx:\n    prober: http\n    timeout: {min(interval_ms, 1000)}ms\n"
                "    http: {preferred_ip_protocol: ip4}\n")
    p = subprocess.Popen(["prometheus-blackbox-exporter", f"--config.file={cfg}",
                          f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                         stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics")
        driver = subprocess.Popen([os.path.join(args.build, "bench", "blackbox_driver"),
                                   f"http://127.0.0.1:{port}/probe?module=http_2xx&target=",
                                   f"http://127.0.0.1:{nginx_port}/t/", str(targets), str(interval_ms),
                                   f"{warmup}:{seconds}"], stdout=subprocess.PIPE, text=True)
        c0 = c1 = 0.0
        result = {}
        for line in driver.stdout:
            line = line.strip()
            if line == "MEASURE_START":
                c0 = cpu_seconds(p.pid)
            elif line == "MEASURE_END":
                c1 = cpu_seconds(p.pid)
            elif line.startswith("{"):
                result = json.loads(line)
        driver.wait()
        done = result["ok"] + result["failed"]
        return {"probes_per_s": done / seconds, "cpu_s_per_1000": (c1 - c0) / done * 1000 if done else float("nan"),
                "failed": result["failed"], "runs": done, "peak_rss_mib": peak_rss_mib(p.pid),
                "lateness_p50_ms": None, "lateness_p99_ms": None,
                "driver_lateness_p50_ms": result["lateness_p50_ms"], "driver_lateness_p99_ms": result["lateness_p99_ms"]}
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=2000)
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--memory-targets", type=int, default=10000)
    ap.add_argument("--memory-interval-ms", type=int, default=10000)
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="greenlight-bench-") as tmp:
        nginx, nginx_port = start_nginx(tmp)
        try:
            gl = run_greenlight(args, tmp, nginx_port, args.targets, args.interval_ms, args.seconds, args.warmup)
            bb = run_blackbox(args, tmp, nginx_port, args.targets, args.interval_ms, args.seconds, args.warmup)
            mem = None
            if args.memory_targets:
                mem = run_greenlight(args, tmp, nginx_port, args.memory_targets, args.memory_interval_ms,
                                     args.seconds, max(args.warmup, args.memory_interval_ms // 1000 + 1))
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=30)
    print(f"\nProbe benchmark: {args.targets} HTTP targets on a local nginx, every {args.interval_ms} ms, "
          f"{args.seconds} s measured after {args.warmup} s warm-up ({os.cpu_count()} cores)\n")
    print("| prober | probes/s | failed | CPU-s per 1,000 probes | peak RSS MiB | lateness p50 ms | lateness p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in (("greenlight", gl), ("blackbox_exporter", bb)):
        print(f"| {name} | {r['probes_per_s']:.0f} | {r['failed']:.0f} | {r['cpu_s_per_1000']:.3f} | "
              f"{r['peak_rss_mib']:.1f} | {fmt(r['lateness_p50_ms'], '.2f')} | {fmt(r['lateness_p99_ms'], '.2f')} |")
    print(f"\ngreenlight / blackbox_exporter CPU per probe: {gl['cpu_s_per_1000'] / bb['cpu_s_per_1000']:.2f}x")
    print(f"(blackbox_exporter has no scheduler of its own; its driver started requests "
          f"p50 {bb['driver_lateness_p50_ms']:.2f} ms / p99 {bb['driver_lateness_p99_ms']:.2f} ms late)")
    if mem:
        print(f"\ngreenlight with {args.memory_targets} configured targets every {args.memory_interval_ms} ms: "
              f"{mem['probes_per_s']:.0f} probes/s, peak RSS {mem['peak_rss_mib']:.1f} MiB, "
              f"{mem['cpu_s_per_1000']:.3f} CPU-s per 1,000 probes, lateness p99 {mem['lateness_p99_ms']:.2f} ms, "
              f"{mem['failed']:.0f} failed")


if __name__ == "__main__":
    sys.exit(main())
