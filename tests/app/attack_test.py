#!/usr/bin/env python3
"""Hostile input against running processes: the demo's `greenlight run` admin API and status
page, and its `greenlight proxy` listener. Each attack must get a clean refusal (the right 4xx,
or a close), the process must stay up and answer the next ordinary request, and its memory must
stay bounded over many rounds. The outcomes are the table in SECURITY.md.

Usage: attack_test.py GREENLIGHT_BINARY SOURCE_DIR"""

import json
import os
import re
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from demo_harness import Demo, demo_config, finish, http, stop_all, wait_until  # noqa: E402

OPERATOR = "attack-test-operator-0123456789"
VIEWER = "attack-test-viewer-0123456789ab"


def raw(port, data, timeout=10, read_all=True):
    """Sends bytes on a fresh connection; returns what came back until the peer closed (or the
    first response, if read_all is False)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if not read_all and b"\r\n\r\n" in out:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        return out


def status_of(reply):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", reply)
    return int(m.group(1)) if m else None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def post(port, path, body, token=OPERATOR):
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return raw(port, head + body)


def main():
    binary, source_dir = sys.argv[1], sys.argv[2]
    failures = []
    table = []

    def check(name, ok, detail=""):
        table.append((name, "ok" if ok else "FAILED", detail))
        if not ok:
            failures.append(f"{name}: {detail}")

    with tempfile.TemporaryDirectory(prefix="greenlight-attack-") as work:
        config = demo_config(source_dir, admin_tokens=[("ops", "operator", OPERATOR), ("view", "viewer", VIEWER)])
        demo = Demo(binary, source_dir, work, config, token=OPERATOR)
        try:
            admin = demo.admin_port
            log = os.path.join(work, "demo.log")
            proxy_url = wait_until(lambda: re.search(r"sample service\s+(http://127\.0\.0\.1:\d+)", open(log).read()),
                                   30, "the demo to print the sample service's URL").group(1)
            proxy = int(proxy_url.rsplit(":", 1)[1])

            def alive():
                return demo.process.poll() is None and http("GET", demo.admin + "/healthz", timeout=5)[0] == 200

            silence = "/api/v1/silences"
            deep = b"[" * 30000 + b"]" * 30000
            wide = json.dumps({"matchers": [1] * 5000, "duration": "1h", "comment": "x"}).encode()
            not_utf8 = b'{"matchers": ["oem=bmw"], "duration": "1h", "comment": "\xff\xfe\xfd"}'
            bodies = [
                ("JSON nested 30,000 deep", deep, 400, b"nested deeper"),
                ("JSON with 5,000 values", wide, 400, b"more than"),
                ("JSON with invalid UTF-8", not_utf8, 400, b"not valid JSON"),
                ("JSON over 64 KiB", b'{"comment": "' + b"a" * (100 * 1024) + b'"}', 413, b"larger than"),
                ("body over 1 MiB", b"[" + b"0," * (600 * 1024) + b"0]", 413, b""),
            ]
            for name, body, want, says in bodies:
                reply = post(admin, silence, body)
                got = status_of(reply)
                ok = got == want and says in reply and b"\xff" not in reply
                check(f"admin API: {name}", ok, f"HTTP {got}, want {want}: {reply[:300]!r}")
            # A rollout command with a hostile release name or body.
            reply = post(admin, "/api/v1/rollouts/vehicles/start", b'{"release": "../../etc/passwd"}')
            check("admin API: release name with a path", status_of(reply) == 400, repr(reply[:200]))
            reply = post(admin, "/api/v1/rollouts/vehicles/start", b'{"release": "v2", "release": {"$gt": ""}}')
            check("admin API: duplicate keys, object where a string belongs", status_of(reply) == 400, repr(reply[:200]))
            # Path traversal on the status page's files: only names compiled into the binary exist.
            for path in ["/status/../../../../etc/passwd", "/status/%2e%2e/%2e%2e/etc/passwd",
                         "/status/..%2f..%2f..%2fetc%2fpasswd", "/status//etc/passwd", "/status/status.js%00.html"]:
                reply = raw(admin, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                check(f"status page: GET {path}", status_of(reply) in (400, 404) and b"root:" not in reply,
                      f"HTTP {status_of(reply)}")
            # Oversized headers.
            reply = raw(admin, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (200 * 1024) + b"\r\n\r\n")
            check("admin API: 200 KiB header", status_of(reply) in (400, 413, 431) or reply == b"", f"HTTP {status_of(reply)}")
            check("admin API stays up after hostile bodies", alive())

            # Slowloris: many connections that never finish their headers. Ordinary requests are
            # still answered at once, and the server lets go of the slow ones after its timeout.
            slow = []
            for _ in range(40):
                s = socket.create_connection(("127.0.0.1", admin), timeout=20)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                slow.append(s)
            started = time.monotonic()
            code, _ = http("GET", demo.admin + "/api/v1/probes", token=VIEWER, timeout=10)
            took = time.monotonic() - started
            check("admin API: 40 slowloris connections open", code == 200 and took < 2.0,
                  f"an ordinary request took {took:.2f} s (HTTP {code})")
            started = time.monotonic()
            closed = 0
            for s in slow:
                s.settimeout(max(0.1, 15 - (time.monotonic() - started)))
                try:
                    s.recv(1024)  # b"" (closed) or a refusal: the server let go either way
                    closed += 1
                except ConnectionResetError:
                    closed += 1
                except socket.timeout:
                    pass
                s.close()
            took = time.monotonic() - started
            check("admin API: slowloris connections closed by the server", closed == 40 and took < 15,
                  f"{closed} of 40 closed, the last after {took:.1f} s")

            # The proxy's listener: request-smuggling shapes and oversized headers.
            smuggling = [
                ("Content-Length with Transfer-Encoding",
                 b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                ("two different Content-Lengths", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"),
                ("bad chunk size", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
                ("obs-fold header", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n"),
                ("invalid method", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
                ("100 KiB header", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (100 * 1024) + b"\r\n\r\n"),
            ]
            for name, data in smuggling:
                reply = raw(proxy, data, read_all=False)
                check(f"proxy: {name}", status_of(reply) in (400, 413, 431), f"HTTP {status_of(reply)}: {reply[:120]!r}")
            code, body = http("GET", proxy_url + "/health")
            check("proxy still serves after hostile requests", code == 200, f"HTTP {code}")

            # Memory stays bounded: many rounds of hostile bodies.
            before = rss_kib(demo.process.pid)
            for _ in range(100):
                for _, body, _, _ in bodies[:4]:
                    post(admin, silence, body)
            after = rss_kib(demo.process.pid)
            # Under AddressSanitizer freed memory waits in its quarantine (256 MiB by default).
            limit_mib = 30 + (256 if os.environ.get("GREENLIGHT_SANITIZED") else 0)
            check("admin API: memory over 400 hostile bodies", after - before < limit_mib * 1024,
                  f"RSS {before // 1024} MiB -> {after // 1024} MiB (limit: {limit_mib} MiB more)")

            # Token brute force, last (it locks this address out): refused, counted, then 429.
            codes = [http("GET", demo.admin + "/api/v1/probes", token=f"guess-{i:04d}-abcdefghijklmnop")[0] for i in range(12)]
            check("admin API: token brute force", codes[0] == 401 and codes[-1] == 429, f"codes {codes}")
            code, _ = http("GET", demo.admin + "/api/v1/probes", token=OPERATOR)
            check("admin API: a locked-out address is refused even with a good token", code == 429, f"HTTP {code}")
            check("greenlight demo is up at the end", alive())
        finally:
            stop_all()
    width = max(len(t[0]) for t in table)
    for name, outcome, detail in table:
        print(f"{name.ljust(width)}  {outcome}" + (f"  {detail}" if outcome != "ok" else ""))
    finish(failures)


if __name__ == "__main__":
    main()
