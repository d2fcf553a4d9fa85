#!/usr/bin/env python3
"""Failure-to-notification latency: greenlight run vs Prometheus + blackbox_exporter +
Alertmanager (Debian packages), side by side in one run, watching the same target.

Both pipelines probe the simulated BMW integration (`greenlight simulate`) every second and
deliver to one local webhook receiver. Each trial injects a fault (503 on every request),
waits for both "firing" notifications, heals it, waits for both "resolved". The Prometheus
stack is tuned (1 s scrape and evaluation, group_wait 1 s, group_interval 1 s); its shipped
defaults take minutes a trial and run only with --defaults-trials.

    python3 bench/alert_bench.py --trials 20
"""
import argparse
import http.server
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import free_port, cpu_seconds, wait_http  # noqa: E402


class Receiver(http.server.ThreadingHTTPServer):
    """Records (arrival time, pipeline, status) of every webhook notification."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                at = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with outer.lock:
                    outer.events.append((at, self.path.strip("/"), body.get("status")))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def first_after(self, pipeline, status, t0):
        with self.lock:
            for at, p, s in self.events:
                if p == pipeline and s == status and at >= t0:
                    return at
        return None


def request(method, url, body=None):
    req = urllib.request.Request(url, data=body.encode() if body else None, method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read()


def start(argv, log):
    return subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()


def prometheus_stack(tmp, target, receiver_port, tuned):
    bb_port, prom_port, am_port = free_port(), free_port(), free_port()
    with open(f"{tmp}/blackbox.yml", "w") as f:
        f.write("modules:\n  http_2xx:\n    prober: http\n    timeout: 1s\n    http: {preferred_ip_protocol: ip4}\n")
    scrape, evaluation = ("1s", "1s") if tuned else ("1m", "1m")
    with open(f"{tmp}/rules.yml", "w") as f:
        f.write("groups:\n  - name: bench\n    rules:\n"
                "      - {alert: ProbeFailing, expr: 'probe_success == 0', labels: {severity: page}}\n")
    with open(f"{tmp}/prometheus.yml", "w") as f:
        f.write(f"global: {{scrape_interval: {scrape}, evaluation_interval: {evaluation}}}\n"
                f"rule_files: [{tmp}/rules.yml]\n"
                f"alerting: {{alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]}}]}}\n"
                "scrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n    params: {module: [http_2xx]}\n"
                f"    static_configs: [{{targets: ['{target}']}}]\n"
                "    relabel_configs:\n"
                "      - {source_labels: [__address__], target_label: __param_target}\n"
                "      - {source_labels: [__param_target], target_label: instance}\n"
                f"      - {{target_label: __address__, replacement: '127.0.0.1:{bb_port}'}}\n")
    timing = "group_wait: 1s, group_interval: 1s, repeat_interval: 1h" if tuned else "repeat_interval: 4h"
    with open(f"{tmp}/am.yml", "w") as f:
        f.write(f"route: {{receiver: bench, {timing}}}\n"
                f"receivers: [{{name: bench, webhook_configs: [{{url: 'http://127.0.0.1:{receiver_port}/prometheus', "
                "send_resolved: true}]}]\n")
    procs = [
        start(["prometheus-blackbox-exporter", f"--config.file={tmp}/blackbox.yml",
               f"--web.listen-address=127.0.0.1:{bb_port}"], f"{tmp}/blackbox.log"),
        start(["prometheus-alertmanager", f"--config.file={tmp}/am.yml", f"--storage.path={tmp}/am",
               f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="], f"{tmp}/am.log"),
        start(["prometheus", f"--config.file={tmp}/prometheus.yml", f"--storage.tsdb.path={tmp}/prom",
               f"--web.listen-address=127.0.0.1:{prom_port}"], f"{tmp}/prometheus.log"),
    ]
    wait_http(f"http://127.0.0.1:{am_port}/-/ready")
    wait_http(f"http://127.0.0.1:{prom_port}/-/ready")
    return procs


def greenlight(args, tmp, target, receiver_port):
    admin = free_port()
    with open(f"{tmp}/greenlight.yaml", "w") as f:
        f.write(f"log: {{level: warn}}\nadmin: {{listen: '127.0.0.1:{admin}'}}\n"
                "probes:\n"
                f"  - {{name: bmw-health, labels: {{oem: bmw}}, interval: 1s, timeout: 1s,\n"
                f"     health: {{failure_threshold: 1}}, url: 'http://{target}'}}\n"
                "alerting:\n"
                f"  state_dir: {tmp}/greenlight-state\n"
                "  rules: [{alert: ProbeFailing, kind: probe_health, labels: {severity: page}}]\n"
                "  route: {receiver: bench, group_wait: 0s, group_interval: 1m, resolve_immediately: true}\n"
                f"  receivers: [{{name: bench, webhook: {{url: 'http://127.0.0.1:{receiver_port}/greenlight'}}}}]\n")
    p = start([os.path.join(args.build, "app", "greenlight"), "run", "--config", f"{tmp}/greenlight.yaml"],
              f"{tmp}/greenlight.log")
    wait_http(f"http://127.0.0.1:{admin}/readyz")
    return p


def trials(n, receiver, faults_url, pipelines, deadline_s):
    lat = {p: {"firing": [], "resolved": []} for p in pipelines}
    for i in range(n):
        for action, status in (("PUT", "firing"), ("DELETE", "resolved")):
            time.sleep(random.uniform(1.0, 2.0))  # decorrelate from the probe and scrape phase
            t0 = time.monotonic()
            if action == "PUT":
                request("PUT", faults_url, '{"error_rate": 1, "status": 503}')
            else:
                request("DELETE", faults_url)
            end = t0 + deadline_s
            while time.monotonic() < end:
                if all(receiver.first_after(p, status, t0) for p in pipelines):
                    break
                time.sleep(0.01)
            for p in pipelines:
                at = receiver.first_after(p, status, t0)
                lat[p][status].append(at - t0 if at else float("nan"))
        print(f"  trial {i + 1}/{n}: " + ", ".join(
            f"{p} {lat[p]['firing'][-1]:.2f}/{lat[p]['resolved'][-1]:.2f} s" for p in pipelines), flush=True)
    return lat


def q(values, p):
    v = sorted(x for x in values if x == x)
    if not v:
        return float("nan")
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--defaults-trials", type=int, default=0, help="also measure Prometheus' shipped defaults (minutes each)")
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    rport = receiver.server_address[1]
    with tempfile.TemporaryDirectory() as tmp:
        sim = subprocess.Popen([os.path.join(args.build, "app", "greenlight"), "simulate", "--no-tls"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        info_text = ""
        for line in sim.stdout:
            info_text += line
            if line.startswith("}"):
                break
        info = json.loads(info_text)
        target = f"127.0.0.1:{info['oems']['bmw']['port']}/health"
        faults = f"{info['admin']['url']}/faults/bmw"
        results = {}
        try:
            gl = greenlight(args, tmp, target, rport)
            stack = prometheus_stack(tmp, target, rport, tuned=True)
            time.sleep(5)  # both have scraped/probed a few times
            c0 = {"greenlight": cpu_seconds(gl.pid), "prometheus": sum(cpu_seconds(p.pid) for p in stack)}
            w0 = time.monotonic()
            print(f"{args.trials} trials, tuned Prometheus stack:", flush=True)
            results = trials(args.trials, receiver, faults, ["greenlight", "prometheus"], 60)
            wall = time.monotonic() - w0
            cpu = {"greenlight": cpu_seconds(gl.pid) - c0["greenlight"],
                   "prometheus": sum(cpu_seconds(p.pid) for p in stack) - c0["prometheus"]}
            for p in stack:
                stop(p)
            defaults = None
            if args.defaults_trials:
                os.makedirs(f"{tmp}/d", exist_ok=True)
                stack = prometheus_stack(f"{tmp}/d", target, rport, tuned=False)
                print(f"{args.defaults_trials} trials, Prometheus stack with shipped defaults:", flush=True)
                defaults = trials(args.defaults_trials, receiver, faults, ["prometheus"], 900)
                for p in stack:
                    stop(p)
            stop(gl)
        finally:
            sim.send_signal(signal.SIGTERM)
            sim.wait(timeout=20)
    rows = [("greenlight (event-driven, group_wait 0)", results["greenlight"], cpu["greenlight"]),
            ("Prometheus + blackbox + Alertmanager, tuned", results["prometheus"], cpu["prometheus"])]
    if defaults:
        rows.append(("Prometheus + blackbox + Alertmanager, defaults", defaults["prometheus"], None))
    print(f"\n| pipeline | firing p50 | firing p99 | firing max | resolved p50 | resolved p99 | CPU % of a core |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r, c in rows:
        cpu_txt = f"{100 * c / wall:.2f}" if c is not None else "-"
        print(f"| {name} | {q(r['firing'], .5):.2f} s | {q(r['firing'], .99):.2f} s | {max(r['firing']):.2f} s | "
              f"{q(r['resolved'], .5):.2f} s | {q(r['resolved'], .99):.2f} s | {cpu_txt} |")
    g, p = results["greenlight"], results["prometheus"]
    print(f"\ngreenlight / tuned stack, firing p50: {q(g['firing'], .5) / q(p['firing'], .5):.2f}x; "
          f"CPU: {cpu['greenlight'] / cpu['prometheus']:.2f}x (wall {wall:.0f} s, {args.trials} trials)")


if __name__ == "__main__":
    main()
