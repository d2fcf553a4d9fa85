#!/usr/bin/env python3
"""The status page in a real browser: headless Chromium (Debian packages chromium and
chromium-driver) driven through ChromeDriver's W3C WebDriver HTTP API, against a running demo
whose admin API has a viewer and an operator token.

Checks: probes grouped by OEM; a probe turns red within seconds of a fault injected into the
simulator; as a viewer, "abort" is refused by the server and the rollout goes on; as an
operator, "abort" (confirmed in the dialog) rolls the rollout back. Also over plain HTTP: the
page needs no token, the API does, and no path reaches a file outside the embedded set.
Leaves a screenshot in OUTPUT_DIR.

usage: status_page_browser_test.py GREENLIGHT_BINARY SOURCE_DIR OUTPUT_DIR"""

import base64
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import demo_harness as h  # noqa: E402

VIEWER = "viewer-token-0123456789abcdef0123456789"
OPERATOR = "operator-token-0123456789abcdef012345678"


class Browser:
    """A minimal WebDriver client: just what this test needs."""

    def __init__(self, workdir):
        port = h.free_port()
        self.base = f"http://127.0.0.1:{port}"
        h.start([shutil.which("chromedriver") or "/usr/bin/chromedriver", f"--port={port}"], os.path.join(workdir, "chromedriver.log"))
        h.wait_until(lambda: self.call("GET", "/status")["ready"], 30, "chromedriver")
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            # The flags keep Chromium off the network (no update, sync or component checks).
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1280,1600", f"--user-data-dir={workdir}/chromium"]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        status, text = h.http(method, self.base + path, body if body is not None else ({} if method == "POST" else None), timeout=60)
        value = json.loads(text)["value"]
        if status != 200:
            raise RuntimeError(f"webdriver {method} {path}: {value.get('error')}: {value.get('message', '')[:300]}")
        return value

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def open(self, url):
        self.s("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        found = self.s("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))

    def click(self, css):
        # The page re-renders every 2 s: a button found a moment ago may be gone; find it again.
        h.wait_until(lambda: self.s("POST", f"/element/{self.find(css)}/click") is None, 10, f"a click on {css}")

    def type(self, css, text):
        self.s("POST", f"/element/{self.find(css)}/value", {"text": text})

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))

    def close(self):
        try:
            self.s("DELETE", "")
        except Exception:  # noqa: BLE001 - the driver is stopped next anyway
            pass


def use_token(b, token):
    b.type("#token", token)
    b.click("#token-form button[type=submit]")


def main():
    binary, source, out_dir = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    work = h.temp_workdir("greenlight-browser-test-")
    b = None
    try:
        config = h.demo_config(source, probe_interval="2s", bake="30s",
                               admin_tokens=[("on-call", "viewer", VIEWER), ("release-manager", "operator", OPERATOR)])
        demo = h.Demo(binary, source, work, config, token=OPERATOR)

        # Over HTTP: the page is public, the data is not, and nothing outside the embedded set is served.
        assert h.http("GET", demo.admin + "/")[0] == 200
        assert h.http("GET", demo.admin + "/status/status.js")[0] == 200
        assert h.http("GET", demo.admin + "/api/v1/probes")[0] == 401
        for path in ["/status/../../../etc/passwd", "/status/%2e%2e/%2e%2e/etc/passwd", "/status/..%2fCMakeLists.txt", "/status/status.js%00.html"]:
            status, _ = h.http("GET", demo.admin + path)
            assert status == 404, f"{path}: {status}"

        b = Browser(work)
        b.open(demo.admin + "/")
        assert "needs a token" in h.wait_until(lambda: b.js("return document.getElementById('error').textContent"), 10, "the token prompt")
        use_token(b, VIEWER)

        oems = h.wait_until(lambda: (lambda v: v if {"bmw", "ford", "hyundai", "tesla", "platform"} <= set(v) else None)(
            b.js("return [...document.querySelectorAll('section[data-oem]')].map(s => s.dataset.oem)")), 20, "probes grouped by OEM")
        print("OEM groups on the page:", oems)
        h.wait_until(lambda: b.js("return document.querySelector('tr[data-probe=\"ford-fuel\"]').dataset.health") == "healthy", 30,
                     "ford-fuel healthy before the fault")

        # A rollout in progress (long bake), started through the API by the release manager.
        status, body = demo.api("POST", "/api/v1/rollouts/vehicles/start", {"release": "v2"})
        assert status == 200, body
        h.wait_until(lambda: b.js("return document.querySelector('article[data-service=vehicles]').dataset.phase") == "shifting", 30,
                     "the page to show the rollout shifting")

        # As a viewer, abort is refused by the server; the rollout goes on.
        b.click("article[data-service=vehicles] button[data-action=abort]")
        h.wait_until(lambda: b.js("return document.getElementById('confirm').open"), 10, "the confirm dialog")
        b.type("#confirm-reason", "viewer tries")
        b.click("#confirm-ok")
        refused = h.wait_until(lambda: (lambda t: t if "403" in t else None)(b.js("return document.getElementById('action-result').textContent")),
                               10, "the refusal on the page")
        print("as viewer:", refused)
        assert demo.rollout()["phase"] == "shifting", "a viewer's abort changed the rollout"

        # A fault in the Ford integration: its probe turns red on the page within seconds.
        demo.inject_fault("ford", {"error_rate": 1, "status": 503})
        injected = time.monotonic()
        h.wait_until(lambda: b.js("return document.querySelector('tr[data-probe=\"ford-fuel\"]').dataset.health") == "unhealthy", 20,
                     "ford-fuel to turn red")
        red_after = time.monotonic() - injected
        why = b.js("return document.querySelector('tr[data-probe=\"ford-fuel\"] td.detail').textContent")
        print(f"ford-fuel red on the page {red_after:.1f} s after the fault; shown reason: {why}")
        assert "503" in why or "STATUS" in why, why

        # As an operator, abort (confirmed) rolls the rollout back.
        use_token(b, OPERATOR)
        b.click("article[data-service=vehicles] button[data-action=abort]")
        h.wait_until(lambda: b.js("return document.getElementById('confirm').open"), 10, "the confirm dialog")
        b.type("#confirm-reason", "browser test abort")
        b.click("#confirm-ok")
        h.wait_until(lambda: b.js("return document.querySelector('article[data-service=vehicles]').dataset.phase") == "rolled-back", 30,
                     "the page to show the rollout rolled back")
        assert demo.rollout()["phase"] == "rolled-back"
        status, history = demo.api("GET", "/api/v1/rollouts/vehicles/history")
        assert any(l["actor"] == "release-manager" and "browser test abort" in l["detail"] for l in history), history
        assert not any(l["actor"] == "on-call" for l in history), "the viewer's refused abort reached the audit log"
        h.wait_until(lambda: "release-manager: rollback vehicles" in b.js("return document.getElementById('audit-list').textContent"), 10,
                     "the abort in the page's audit tail")
        shot = os.path.join(out_dir, "status_page.png")
        b.screenshot(shot)
        print("screenshot:", shot)
        # Readable on a phone: one column, nothing wider than the screen.
        b.s("POST", "/window/rect", {"width": 390, "height": 844})
        h.wait_until(lambda: b.js("return window.innerWidth") <= 400, 10, "the phone-sized window")
        overflow = b.js("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than a phone screen"
        b.screenshot(os.path.join(out_dir, "status_page_phone.png"))
        demo.clear_fault("ford")
    finally:
        if b:
            b.close()
        h.stop_all()
    print("ok")


if __name__ == "__main__":
    main()
