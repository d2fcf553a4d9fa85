#!/usr/bin/env python3
"""Data-plane benchmark: wrk against the backend directly, greenlight proxy, HAProxy and nginx,
same backends, same run, keep-alive and `Connection: close`; then the switch test: weight flips
blue->green->blue under wrk load, for greenlight (runtime socket) and HAProxy (runtime API).

  python3 bench/proxy_bench.py [--seconds 10] [--connections 64] [--flips 1000] [--build build]
                               [--rounds 1] [--compare-build DIR] [--access-log] [--request-id]
                               [--idle 5000] [--idle-tls 0] [--idle-wait 25] [--tls]

First, on the freshly started proxies, the memory test: --idle N keep-alive clients (default
5,000; 0 skips it) each make one request and then wait, as apps do between API calls; each
proxy's proportional set size (its processes together, shared pages counted once) before, with
them and after they closed gives the memory an idle client costs it. It is read as soon as it
settles and again --idle-wait S seconds later (default 25; 0 skips it): what a proxy keeps from
the burst of opening them (greenlight frees spare buffers no request needed for 10 s); the
reading after they closed is then also taken that long after. HAProxy's client timeout is 75 s,
nginx's keep-alive timeout, so that none closes them meanwhile. --idle-tls N does the same
over TLS, with a greenlight proxy, an HAProxy and an nginx of their own terminating it (a
self-signed P-256 certificate), stopped before the runs.

--tls adds a third mode after the two above: keep-alive over TLS, wrk against a greenlight proxy
(and --compare-build's), an HAProxy and an nginx each terminating TLS with that certificate,
in rounds as the others (no direct row: the backends speak plain HTTP). wrk makes its 64
handshakes once; the figures are the cost of the records.

With --rounds N each mode measures every target N times, round after round, each round in a
different order, and reports the median of each target's rates, p50s and CPU figures with the
errors of all rounds: this machine's speed drifts by 10-20% over minutes, and one 10 s run per
target in a fixed order lets that drift decide a ratio of a few percent.

--compare-build DIR adds a second greenlight proxy, from another build directory (e.g. one made
from an earlier commit with `git worktree`), measured in the same rounds: how a change is judged
before it is kept. --access-log adds a greenlight proxy with its access log on (written to the
temporary directory), measured in the same rounds: what the log costs; --request-id likewise a
greenlight proxy with request ids on (proxy.request_id). --flips 0 skips the switch test.

Each proxy's CPU per request is split into user space and kernel; 'vs direct at zero user CPU'
is the rate the same run would have reached had the proxy's user-space part cost nothing. It
rests on the rate following the machine's CPU per request (wrk, backend and proxy share the
processors, which stay busy): adding a busy loop of 4 and 9 µs per request to greenlight moved
its rate to within 0.5% of what that predicts (bench/RESULTS.md, thirteenth session).
"""
import argparse
import os
import statistics
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from benchlib import free_port, machine_busy_seconds, settled_pss, tree_cpu_split, tree_pss_kib, wait_http


def wait_port(port):
    wait_http(f"http://127.0.0.1:{port}/")


def start_nginx(tmp, name, workers, location, upstream="", listen_extra="", server_extra=""):
    """An nginx of its own (prefix, pid and temp paths in tmp) listening on a free port."""
    port = free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes {workers}; pid {d}/pid; error_log {d}/error.log;
worker_rlimit_nofile 16384;
events {{ worker_connections 16384; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
  {upstream}
  server {{ listen 127.0.0.1:{port} backlog=4096{listen_extra}; {server_extra} location / {{ {location} }} }} }}
""")
    return subprocess.Popen(["nginx", "-c", conf, "-p", d], stderr=subprocess.DEVNULL), port


def nginx(tmp, name, body):
    return start_nginx(tmp, name, 1, f"return 200 '{body}';")


def nginx_proxy(tmp, backend_port, tls=None, server_extra=""):
    """tls: (certificate file, key file) to terminate TLS with, as the others do; server_extra:
    more of the server block (e.g. a stub_status location)."""
    return start_nginx(tmp, "nginx-proxy-tls" if tls else "nginx-proxy", 2,
                       'proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";',
                       f"upstream be {{ server 127.0.0.1:{backend_port}; keepalive 64; }}",
                       " deferred" + (" ssl" if tls else ""),  # TCP_DEFER_ACCEPT, as greenlight's default defer_accept
                       (f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]}; " if tls else "") + server_extra)


def haproxy(tmp, blue_port, green_port, tls=None, prometheus_port=None):
    """prometheus_port: also serve HAProxy's Prometheus exporter there (/metrics)."""
    port, d = free_port(), os.path.join(tmp, "haproxy-tls" if tls else "haproxy")
    os.makedirs(d, exist_ok=True)
    sock = os.path.join(d, "admin.sock")
    conf = os.path.join(d, "haproxy.cfg")
    exporter = (f"frontend prometheus\n  bind 127.0.0.1:{prometheus_port}\n"
                "  http-request use-service prometheus-exporter if { path /metrics }\n") if prometheus_port else ""
    with open(conf, "w") as f:
        f.write(f"""global
  nbthread 2
  stats socket {sock} mode 600 level admin
defaults
  mode http
  timeout connect 2s
  timeout client 75s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:{port} defer-accept{f" ssl crt {tls[2]}" if tls else ""}
  default_backend be
{exporter}backend be
  balance roundrobin
  server blue 127.0.0.1:{blue_port} weight 100
  server green 127.0.0.1:{green_port} weight 0
""")
    return subprocess.Popen(["haproxy", "-f", conf], stderr=subprocess.DEVNULL), port, sock


def greenlight(tmp, build, blue_port, green_port, threads, name="greenlight", access_log=False, request_id=False, tls=None,
               admin=None):
    """admin: the admin API's port (its /metrics); a free one when not given."""
    port, d = free_port(), os.path.join(tmp, name)
    admin = admin or free_port()
    os.makedirs(d, exist_ok=True)
    sock = os.path.join(d, "proxy.sock")
    conf = os.path.join(d, "proxy.yaml")
    with open(conf, "w") as f:
        f.write(f"""log: {{level: warn}}
admin: {{listen: 127.0.0.1:{admin}}}
proxy:
  threads: {threads}
  defer_accept: true
  state_file: {d}/routes.json
  runtime_api: {{socket: {sock}}}
{f"  access_log: {{path: {d}/access.log}}" if access_log else ""}
{"  request_id: {header: X-Request-Id}" if request_id else ""}
  services:
    - {{name: bench, listen: 127.0.0.1:{port}, blue: [127.0.0.1:{blue_port}], green: [127.0.0.1:{green_port}]{
        f", tls: {{cert_file: {tls[0]}, key_file: {tls[1]}}}" if tls else ""}}}
""")
    return subprocess.Popen([os.path.join(build, "app", "greenlight"), "proxy", "--config", conf]), port, sock


def unix_command(path, line):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(line.encode() + b"\n")
    out = s.recv(65536).decode()
    s.close()
    return out


def wrk(port, seconds, connections, close=False, scheme="http"):
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", f"{scheme}://127.0.0.1:{port}/"]
    if close:
        cmd[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p50.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockerr = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50_ms": float(p50.group(1)) * scale, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(int(x) for x in sockerr.groups()) if sockerr else 0, "requests": total}


def measure(name, pid, port, args, close, scheme="http"):
    c0, m0, t0 = tree_cpu_split(pid) if pid else (0, 0), machine_busy_seconds(), time.monotonic()
    r = wrk(port, args.seconds, args.connections, close, scheme)
    c1, m1, t1 = tree_cpu_split(pid) if pid else (0, 0), machine_busy_seconds(), time.monotonic()
    r["name"] = name
    r["busy"] = (m1 - m0) / ((t1 - t0) * os.cpu_count())  # the processors' busy share over the run
    r["user_us_per_req"] = r["kernel_us_per_req"] = r["cpu_us_per_req"] = r["rps_at_zero_user"] = None
    if pid:  # a proxy in the path (not direct)
        per_req = 1e6 / r["requests"]
        r["user_us_per_req"] = (c1[0] - c0[0]) * per_req
        r["kernel_us_per_req"] = (c1[1] - c0[1]) * per_req
        r["cpu_us_per_req"] = r["user_us_per_req"] + r["kernel_us_per_req"]
        # Everything the machine ran per request (wrk, backend, proxy). All on the same processors
        # and busy throughout, the rate is set by this sum: without the proxy's user-space part, the
        # same run would have made rps * machine / (machine - user). What is left, the kernel's work
        # for one more TCP hop (two sends, two receives), is the same for any proxy using sockets.
        machine = (m1 - m0) * per_req
        r["rps_at_zero_user"] = r["rps"] * machine / (machine - r["user_us_per_req"])
    return r


def answer_read(sock):
    """Reads one answer with a Content-Length from a blocking socket; False if it closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        body += chunk
    return True


def test_certificate(tmp):
    """A self-signed P-256 certificate for 127.0.0.1: (certificate, key, both in one file for HAProxy)."""
    cert, key, both = (os.path.join(tmp, f) for f in ("tls-cert.pem", "tls-key.pem", "tls-both.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    with open(both, "w") as f:
        f.write(open(cert).read() + open(key).read())
    return cert, key, both


def still_open(sock):
    """Whether the proxy has kept an idle connection open (no close, nothing unasked sent)."""
    sock.setblocking(False)
    try:
        sock.recv(1)  # a close (b"") or bytes nobody asked for
        return False
    except (BlockingIOError, ssl.SSLWantReadError):
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def idle_memory(pid, port, n, batch=250, tls=None, wait=0):
    """Memory an idle keep-alive client costs a proxy: n connections that have each made one
    request and wait for their next (an app between two API calls), opened in batches so the
    listen queue never overflows. Returns (KiB before, KiB with n idle, KiB with them `wait`
    seconds later (None if 0), KiB after they closed (`wait` seconds after, if not 0),
    connections that failed). A connection the
    proxy closed while it waited counts as failed."""
    before = tree_pss_kib(pid)
    held, failed = [], 0
    for start in range(0, n, batch):
        group = []
        for _ in range(min(batch, n - start)):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if tls:
                s = tls.wrap_socket(s, server_hostname="127.0.0.1")
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
            group.append(s)
        for s in group:
            if answer_read(s):
                held.append(s)
            else:
                failed += 1
                s.close()
    during = settled_pss(pid, 5)  # a proxy may finish its per-request work after answering
    later = None
    if wait > 0:  # what stays once the proxy has had time to give back what the burst left
        time.sleep(wait)
        later = tree_pss_kib(pid)
        failed += sum(not still_open(s) for s in held)
    for s in held:
        s.close()
    if wait > 0:  # and once it has had time to give back what they held
        time.sleep(wait)
        after = tree_pss_kib(pid)
    else:
        after = settled_pss(pid, 10)  # the proxy sees the closes and frees what it held
    return before, during, later, after, failed


def median_round(rounds):
    """One target's rounds as one row: the median of each figure, the errors of all rounds."""
    row = dict(rounds[0])
    for key in ("rps", "p50_ms", "cpu_us_per_req", "user_us_per_req", "kernel_us_per_req", "rps_at_zero_user", "busy"):
        if row[key] is not None:
            row[key] = statistics.median(r[key] for r in rounds)
    for key in ("non2xx", "socket_errors", "requests"):
        row[key] = sum(r[key] for r in rounds)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--flips", type=int, default=1000)
    ap.add_argument("--build", default="build")
    ap.add_argument("--threads", type=int, default=2, help="greenlight proxy threads")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds per mode (medians reported)")
    ap.add_argument("--compare-build", help="another build directory, measured as a second greenlight target")
    ap.add_argument("--access-log", action="store_true", help="also measure greenlight with its access log on")
    ap.add_argument("--request-id", action="store_true", help="also measure greenlight with request ids on")
    ap.add_argument("--idle", type=int, default=5000, help="idle keep-alive connections for the memory test (0: skip)")
    ap.add_argument("--idle-tls", type=int, default=0, help="the same over TLS, each proxy terminating it (0: skip)")
    ap.add_argument("--idle-wait", type=int, default=25,
                    help="seconds the idle clients are held after the first reading, then read again (0: skip)")
    ap.add_argument("--tls", action="store_true", help="also measure keep-alive throughput with each proxy terminating TLS")
    args = ap.parse_args()
    procs = []
    with tempfile.TemporaryDirectory(prefix="greenlight-proxy-bench-") as tmp:
        try:
            blue, blue_port = nginx(tmp, "blue", "blue")
            green, green_port = nginx(tmp, "green", "green")
            gl, gl_port, gl_sock = greenlight(tmp, args.build, blue_port, green_port, args.threads)
            hp, hp_port, hp_sock = haproxy(tmp, blue_port, green_port)
            ng, ng_port = nginx_proxy(tmp, blue_port)
            procs = [blue, green, gl, hp, ng]
            for p in (blue_port, green_port, gl_port, hp_port, ng_port):
                wait_port(p)
            results = {}
            targets = [("direct", None, blue_port), ("greenlight", gl.pid, gl_port),
                       ("haproxy", hp.pid, hp_port), ("nginx", ng.pid, ng_port)]
            if args.compare_build:
                other, other_port, _ = greenlight(tmp, args.compare_build, blue_port, green_port, args.threads, "compared")
                procs.append(other)
                wait_port(other_port)
                label = f"greenlight ({os.path.basename(os.path.normpath(args.compare_build))})"
                targets.insert(2, (label, other.pid, other_port))
            if args.access_log:
                logged, logged_port, _ = greenlight(tmp, args.build, blue_port, green_port, args.threads, "logged", True)
                procs.append(logged)
                wait_port(logged_port)
                targets.insert(2, ("greenlight (access log)", logged.pid, logged_port))
            if args.request_id:
                ided, ided_port, _ = greenlight(tmp, args.build, blue_port, green_port, args.threads, "ids", request_id=True)
                procs.append(ided)
                wait_port(ided_port)
                targets.insert(2, ("greenlight (request ids)", ided.pid, ided_port))
            memory, memory_tls = {}, {}
            for name, pid, port in targets[1:] if args.idle > 0 else ():  # on fresh processes, before any load
                memory[name] = idle_memory(pid, port, args.idle, wait=args.idle_wait)
            files = test_certificate(tmp) if args.idle_tls > 0 or args.tls else None
            if args.idle_tls > 0:
                client = ssl.create_default_context(cafile=files[0])
                gl_tls, gl_tls_port, _ = greenlight(tmp, args.build, blue_port, green_port, args.threads, "greenlight-tls", tls=files)
                hp_tls, hp_tls_port, _ = haproxy(tmp, blue_port, green_port, tls=files)
                ng_tls, ng_tls_port = nginx_proxy(tmp, blue_port, tls=files)
                procs += [gl_tls, hp_tls, ng_tls]
                for name, proc, port in (("greenlight", gl_tls, gl_tls_port), ("haproxy", hp_tls, hp_tls_port),
                                         ("nginx", ng_tls, ng_tls_port)):
                    wait_http(f"https://127.0.0.1:{port}/", context=client)
                    memory_tls[name] = idle_memory(proc.pid, port, args.idle_tls, tls=client, wait=args.idle_wait)
                    proc.send_signal(signal.SIGTERM)  # their buffers are not to weigh on the runs below
                    proc.wait(timeout=15)
            for close in (False, True):
                runs = {name: [] for name, _, _ in targets}
                for r in range(args.rounds):
                    for name, pid, port in targets[r % len(targets):] + targets[:r % len(targets)]:
                        runs[name].append(measure(name, pid, port, args, close))
                results[close] = [median_round(runs[name]) for name, _, _ in targets]
            if args.tls:  # started now: idle until here, they weigh on nothing above
                gl_tls, gl_tls_port, _ = greenlight(tmp, args.build, blue_port, green_port, args.threads, "greenlight-tls-run", tls=files)
                hp_tls, hp_tls_port, _ = haproxy(tmp, blue_port, green_port, tls=files)
                ng_tls, ng_tls_port = nginx_proxy(tmp, blue_port, tls=files)
                procs += [gl_tls, hp_tls, ng_tls]
                tls_targets = [("greenlight", gl_tls.pid, gl_tls_port), ("haproxy", hp_tls.pid, hp_tls_port),
                               ("nginx", ng_tls.pid, ng_tls_port)]
                if args.compare_build:
                    other_tls, other_tls_port, _ = greenlight(tmp, args.compare_build, blue_port, green_port, args.threads,
                                                              "compared-tls", tls=files)
                    procs.append(other_tls)
                    tls_targets.insert(1, (label, other_tls.pid, other_tls_port))
                checked = ssl.create_default_context(cafile=files[0])
                for _, _, port in tls_targets:
                    wait_http(f"https://127.0.0.1:{port}/", context=checked)
                runs = {name: [] for name, _, _ in tls_targets}
                for r in range(args.rounds):
                    for name, pid, port in tls_targets[r % len(tls_targets):] + tls_targets[:r % len(tls_targets)]:
                        runs[name].append(measure(name, pid, port, args, False, "https"))
                results["tls"] = [median_round(runs[name]) for name, _, _ in tls_targets]
            flips = {}
            for name, port, flip in () if args.flips <= 0 else (
                    ("greenlight", gl_port, lambda i: unix_command(gl_sock, f"set weight bench blue {0 if i % 2 == 0 else 100} green {100 if i % 2 == 0 else 0}")),
                    ("haproxy", hp_port, lambda i: unix_command(hp_sock, f"set server be/{'green' if i % 2 == 0 else 'blue'} weight 100; set server be/{'blue' if i % 2 == 0 else 'green'} weight 0"))):
                load = subprocess.Popen(["wrk", "-t2", f"-c{args.connections}", f"-d{max(5, args.flips // 100)}s",
                                         f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True)
                time.sleep(0.5)
                for i in range(args.flips):
                    flip(i)
                out = load.communicate()[0]
                non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
                sockerr = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
                flips[name] = (int(non2xx.group(1)) if non2xx else 0, sum(int(x) for x in sockerr.groups()) if sockerr else 0,
                               int(re.search(r"(\d+) requests in", out).group(1)))
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=15)
                except Exception:
                    p.kill()
    rounds = f", median of {args.rounds} interleaved rounds" if args.rounds > 1 else ""
    print(f"\nProxy benchmark: wrk -t2 -c{args.connections} -d{args.seconds}s, all on {os.cpu_count()} cores "
          f"(backend: nginx, 1 worker; proxies: 2 threads/workers){rounds}\n")
    for close in (False, True):
        rows = results[close]
        direct, hp = rows[0], next(r for r in rows if r["name"] == "haproxy")
        print(f"{'Connection: close' if close else 'keep-alive'}\n")
        print("| target | req/s | vs direct | vs HAProxy | p50 ms | proxy CPU µs/req | of it user / kernel "
              "| vs direct at zero user CPU | processors busy | non-2xx | socket errors |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            if r["cpu_us_per_req"] is None:
                cpu_cols = "- | - | -"
            else:
                cpu_cols = (f"{r['cpu_us_per_req']:.1f} | {r['user_us_per_req']:.1f} / {r['kernel_us_per_req']:.1f} | "
                            f"{r['rps_at_zero_user'] / direct['rps']:.2f}x")
            print(f"| {r['name']} | {r['rps']:.0f} | {r['rps'] / direct['rps']:.2f}x | {r['rps'] / hp['rps']:.2f}x | "
                  f"{r['p50_ms']:.3f} | {cpu_cols} | {r['busy']:.0%} | {r['non2xx']} | {r['socket_errors']} |")
        print()
    print("'vs direct at zero user CPU': the rate the same run would have reached had the proxy's "
          "user-space part cost nothing\n(all processes share the processors, so the rate follows "
          "the machine's CPU per request); what remains is the\nkernel's work for the extra TCP hop. "
          "It holds where the processors stay busy: a run that left them idle\n(direct, in short "
          "runs or with Connection: close) was limited by something else, and the figure overstates.\n")
    if "tls" in results:
        rows = results["tls"]
        hp = next(r for r in rows if r["name"] == "haproxy")
        print("keep-alive over TLS (each proxy terminates it; plain HTTP to the backend)\n")
        print("| target | req/s | vs HAProxy | p50 ms | proxy CPU µs/req | of it user / kernel | processors busy | non-2xx | socket errors |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r['name']} | {r['rps']:.0f} | {r['rps'] / hp['rps']:.2f}x | {r['p50_ms']:.3f} | {r['cpu_us_per_req']:.1f} | "
                  f"{r['user_us_per_req']:.1f} / {r['kernel_us_per_req']:.1f} | {r['busy']:.0%} | {r['non2xx']} | {r['socket_errors']} |")
        print()
    for table, n, what in ((memory, args.idle, ""), (memory_tls, args.idle_tls, ", TLS terminated by each proxy")):
        if not table:
            continue
        print(f"Memory: {n} idle keep-alive clients (each made one request and waits){what}, proportional set size "
              "of the proxy's processes\n")
        waited = args.idle_wait > 0
        print("| proxy | before MiB | with clients MiB | KiB per idle client | vs HAProxy |"
              + (f" {args.idle_wait} s later MiB | KiB per idle client | vs HAProxy |" if waited else "")
              + (f" {args.idle_wait} s after they closed MiB |" if waited else " after they closed MiB |") + " failed |")
        print("| --- |" + " ---: |" * (9 if waited else 6))
        per = {name: (during - before) / max(1, n) for name, (before, during, _, _, _) in table.items()}
        later = {name: (w - before) / max(1, n) for name, (before, _, w, _, _) in table.items() if w is not None}
        for name, (before, during, w, after, failed) in table.items():
            row = f"| {name} | {before / 1024:.1f} | {during / 1024:.1f} | {per[name]:.1f} | {per[name] / per['haproxy']:.2f}x |"
            if waited:
                row += f" {w / 1024:.1f} | {later[name]:.1f} | {later[name] / later['haproxy']:.2f}x |"
            print(row + f" {after / 1024:.1f} | {failed} |")
        print()
    if not flips:
        return
    print(f"Switch test: {args.flips} weight flips (blue->green->blue...) under wrk load\n")
    print("| proxy | requests | non-2xx | socket errors |")
    print("| --- | ---: | ---: | ---: |")
    for name, (n2, se, total) in flips.items():
        print(f"| {name} | {total} | {n2} | {se} |")


if __name__ == "__main__":
    main()
