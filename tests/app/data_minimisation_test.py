#!/usr/bin/env python3
"""Data minimisation, end to end: run the demo (with state_encryption on) through faults, alerts,
notifications and a rollout, then scan everything it wrote — the state directory and its log —
for the simulator's client secret, the access tokens it issued, and the vehicle data it served.
None may be there, and the state files must be sealed.

usage: data_minimisation_test.py GREENLIGHT_BINARY SOURCE_DIR"""

import json
import os
import re
import secrets
import ssl
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import demo_harness as h  # noqa: E402


def platform_of(demo_log):
    with open(demo_log) as f:
        m = re.search(r"simulated platform\s+(\S+)\s+\(CA: (\S+)\)", f.read())
    return (m.group(1), m.group(2)) if m else None


def main():
    binary, source = sys.argv[1], sys.argv[2]
    work = h.temp_workdir("greenlight-data-test-")
    client_secret = "sim-secret-" + secrets.token_hex(12)
    state_key = secrets.token_hex(32)
    failures = []
    try:
        config = "state_encryption: {key_env: GREENLIGHT_STATE_KEY}\n" + h.demo_config(source, probe_interval="2s")
        demo = h.Demo(binary, source, work, config,
                      env={"GREENLIGHT_SIM_CLIENT_SECRET": client_secret, "GREENLIGHT_STATE_KEY": state_key})
        log = os.path.join(work, "demo.log")
        platform, ca = h.wait_until(lambda: platform_of(log), 20, "the demo's platform URL")

        # What the platform serves, fetched as an app would: these values must stay in memory.
        ctx = ssl.create_default_context(cafile=ca)

        def call(path, data=None, token=None):
            req = urllib.request.Request(platform + path, data=data)
            if token:
                req.add_header("Authorization", "Bearer " + token)
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return json.loads(r.read())
        token = call("/oauth2/token", urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": "demo-client", "client_secret": client_secret}).encode())["access_token"]
        vehicles = [v["id"] for v in call("/v2.0/vehicles", token=token)["vehicles"]]
        sensitive = {client_secret: "the OAuth2 client secret", token: "an access token"}
        for vid in vehicles:
            odo = call(f"/v2.0/vehicles/{vid}/odometer", token=token)["data"]["odometer"]["distance"]
            sensitive[f"{int(odo)}."] = f"odometer of {vid}"  # the whole-km part is fixed per vehicle
            lat = call(f"/v2.0/vehicles/{vid}/location", token=token)["data"]["location"]["latitude"]
            sensitive[f"{lat:.3f}"] = f"latitude of {vid}"

        # The probes did read vehicle data (a flow through token, vehicles and odometer passed):
        # without that the scan below would prove nothing.
        h.wait_until(lambda: any(p["name"] == "platform-bmw-odometer" and p.get("last", {}).get("success")
                                 for p in demo.api("GET", "/api/v1/probes")[1]), 30, "a vehicle-data flow to pass")
        # Faults, alerts and notifications (the outbox), a rollout (rollout state and audit log).
        demo.inject_fault("bmw", {"error_rate": 1, "status": 503})
        demo.inject_fault("tesla", {"invalid_json": True})
        h.wait_until(lambda: len([a for a in demo.api("GET", "/api/v1/alerts")[1]["alerts"] if a["state"] == "firing"]) >= 2,
                     60, "alerts to fire")
        status, body = demo.api("POST", "/api/v1/rollouts/vehicles/start", {"release": "v2"})
        assert status == 200, body
        demo.wait_for_phase("promoted", 120)
        demo.clear_fault("bmw")
        demo.clear_fault("tesla")
    finally:
        h.stop_all()

    token_re = re.compile(rb"(?<![0-9a-f])[0-9a-f]{48}(?![0-9a-f])")  # the simulator's token shape

    def scan(label, data):
        for value, what in sensitive.items():
            if value.encode() in data:
                failures.append(f"{label}: contains {what}")
        if token_re.search(data):
            failures.append(f"{label}: contains something shaped like an access token")

    scanned = 0
    for root, _, files in os.walk(demo.state_dir):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                data = f.read()
            scanned += 1
            if name.endswith("access.log"):
                # The proxy's access log: its times and durations are ours, not data (a line at
                # second 48 or a 48 ms request can spell a latitude); the rest is scanned.
                data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", b"<time>", data)
                data = re.sub(rb'"duration_ms":[0-9.]+', b'"duration_ms":<ms>', data)
                data = re.sub(rb'"request_id":"[0-9a-f-]{36}"', b'"request_id":<id>', data)  # random, made by the proxy
            scan(path, data)
            if name in ("alerts.json", "outbox.json", "rollouts.json", "routes.json") and not data.startswith(b"GLSEAL1"):
                failures.append(f"{path}: state file not sealed although state_encryption is on")
    access_logs = [os.path.join(r, n) for r, _, fs in os.walk(demo.state_dir) for n in fs if n.endswith("access.log")]
    if not access_logs or os.path.getsize(access_logs[0]) == 0:
        failures.append("the demo proxy's access log is missing or empty: the scan would prove nothing of it")
    with open(os.path.join(work, "demo.log"), "rb") as f:
        # Timestamps are ours, not data, and one at second 48 can spell a latitude (48.1xx).
        scan("demo.log", re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", b"<time>", f.read()))
    scanned += 1
    print(f"scanned {scanned} files for {len(sensitive)} sensitive values from {len(vehicles)} vehicles")
    h.finish(failures)


if __name__ == "__main__":
    main()
