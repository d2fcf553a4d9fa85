#!/usr/bin/env python3
"""Rollout switch latency: from `promote` (and from `abort`) to the first request answered by the
new colour and to the last one answered by the old colour, under client load, for the built-in
proxy and for HAProxy, both driven by the controller of `greenlight run` over their runtime
APIs. Backends: two nginx servers answering "blue" and "green".

    python3 bench/rollout_bench.py --repetitions 50
"""
import argparse
import http.client
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.request

from benchlib import free_port, wait_http
from proxy_bench import greenlight, haproxy, nginx, wait_port

TOKEN = "bench-operator-token-123456"


class Load:
    """Client threads on keep-alive connections recording (time, colour) of every answer."""

    def __init__(self, port, threads):
        self.done = False
        self.records = [[] for _ in range(threads)]
        self.failed = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(port, i), daemon=True) for i in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, port, i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        out = self.records[i]
        while not self.done:
            try:
                conn.request("GET", "/")
                r = conn.getresponse()
                body = r.read().decode()
                if r.status == 200:
                    out.append((time.monotonic(), body))
                else:
                    with self.lock:
                        self.failed += 1
            except Exception:
                with self.lock:
                    self.failed += 1
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def stop(self):
        self.done = True
        for t in self.threads:
            t.join()

    def first_after(self, colour, t0):
        return min((t for rec in self.records for t, c in rec if t >= t0 and c == colour), default=None)

    def last_after(self, colour, t0, t_end):
        return max((t for rec in self.records for t, c in rec if t0 <= t <= t_end and c == colour), default=None)


def api(admin, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{admin}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wait_state(admin, service, pred, deadline=30):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        s = api(admin, "GET", f"/api/v1/rollouts/{service}")
        if pred(s):
            return s
        time.sleep(0.01)
    raise RuntimeError(f"{service}: stuck in {s['phase']}: {s.get('reason')}")


def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repetitions", type=int, default=50)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            blue, blue_port = nginx(tmp, "blue", "blue")
            green, green_port = nginx(tmp, "green", "green")
            procs += [blue, green]
            gl, gl_port, gl_sock = greenlight(tmp, args.build, blue_port, green_port, 2)
            ha, ha_port, ha_sock = haproxy(tmp, blue_port, green_port)
            procs += [gl, ha]
            for p in (blue_port, green_port, gl_port, ha_port):
                wait_port(p)
            admin = free_port()
            svc = lambda name, router: (  # noqa: E731
                f"    - name: {name}\n      release: v1\n      router: {router}\n"
                f"      blue: ['127.0.0.1:{blue_port}']\n      green: ['127.0.0.1:{green_port}']\n"
                "      ready: {path: /}\n"
                "      strategy: {steps: [100], auto_promote: false, scale_down_delay: 1h}\n"
                "      analysis: {interval: 1h}\n")
            with open(f"{tmp}/g.yaml", "w") as f:
                f.write(f"log: {{level: warn}}\nadmin:\n  listen: 127.0.0.1:{admin}\n"
                        f"  tokens: [{{name: bench, role: operator, token: {TOKEN}}}]\n"
                        f"rollouts:\n  tick: 20ms\n  services:\n"
                        + svc("builtin", f"{{builtin: {{socket: {gl_sock}, service: bench}}}}")
                        + svc("haproxy", f"{{haproxy: {{socket: {ha_sock}, backend: be, blue: [blue], green: [green]}}}}"))
            ctl = subprocess.Popen([os.path.join(args.build, "app", "greenlight"), "run", "--config", f"{tmp}/g.yaml"])
            procs.append(ctl)
            wait_http(f"http://127.0.0.1:{admin}/readyz")
            rows = []
            for name, port in (("builtin", gl_port), ("haproxy", ha_port)):
                load = Load(port, args.threads)
                time.sleep(0.5)
                m = {"promote_first_new": [], "promote_last_old": [], "abort_first_old": [], "abort_last_new": []}
                for i in range(args.repetitions):
                    api(admin, "POST", f"/api/v1/rollouts/{name}/start", {"release": f"v2-{i}"})
                    wait_state(admin, name, lambda s: s["awaiting_promotion"])
                    time.sleep(0.05)
                    t0 = time.monotonic()
                    api(admin, "POST", f"/api/v1/rollouts/{name}/promote")
                    time.sleep(0.3)
                    t1 = time.monotonic()
                    api(admin, "POST", f"/api/v1/rollouts/{name}/abort", {"reason": "bench"})
                    wait_state(admin, name, lambda s: s["phase"] == "rolled-back")
                    time.sleep(0.3)
                    t2 = time.monotonic()
                    # green is the new colour (blue stays stable across aborts)
                    m["promote_first_new"].append(load.first_after("green", t0) - t0)
                    m["promote_last_old"].append(max(0.0, (load.last_after("blue", t0, t1) or t0) - t0))
                    m["abort_first_old"].append(load.first_after("blue", t1) - t1)
                    m["abort_last_new"].append(max(0.0, (load.last_after("green", t1, t2) or t1) - t1))
                load.stop()
                total = sum(len(r) for r in load.records)
                rows.append((name, m, load.failed, total))
                print(f"{name}: {args.repetitions} promote/abort cycles, {total} requests, {load.failed} failed", flush=True)
            print("\n| router | promote → first new p50 / p99 | promote → last old p50 / p99 | abort → first old p50 / p99 "
                  "| abort → last new p50 / p99 | failed requests |")
            print("| --- | --- | --- | --- | --- | --- |")
            for name, m, failed, total in rows:
                cells = [f"{1000 * q(m[k], .5):.1f} / {1000 * q(m[k], .99):.1f} ms"
                         for k in ("promote_first_new", "promote_last_old", "abort_first_old", "abort_last_new")]
                print(f"| {name} | " + " | ".join(cells) + f" | {failed} of {total} |")
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    main()
