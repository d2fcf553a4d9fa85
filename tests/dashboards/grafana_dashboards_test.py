#!/usr/bin/env python3
"""Every Grafana panel's PromQL, checked against a real Prometheus scraping a running demo.

Starts `greenlight demo` (faster probes and analysis) and Prometheus (Debian package) scraping
both the demo's /metrics and its proxy's /metrics every second; breaks one OEM for a while, runs
one rollout to promotion and one that is aborted; then, for each dashboard in
dashboards/grafana/: validates the fields Grafana needs, and runs every target, variable and
annotation query with Grafana's variables filled in. Each must parse and return at least one series.

usage: grafana_dashboards_test.py GREENLIGHT_BINARY SOURCE_DIR"""

import glob
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import demo_harness as h  # noqa: E402

RATE_INTERVAL = "15s"   # $__rate_interval at a 1 s scrape interval
RANGE = "15m"           # $__range: longer than the whole test
SUBST = [("$__rate_interval", RATE_INTERVAL), ("$__range", RANGE), ("${datasource}", "prometheus"),
         ("$objective", "0.999"), ("$oem", ".*"), ("$probe", ".*"), ("$location", ".*"), ("$service", ".*")]


def fill(expr):
    for var, value in SUBST:
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unfilled variable in: {expr}"
    return expr


def check_dashboard_shape(path, d):
    errors = []
    for field in ("uid", "title", "panels", "schemaVersion", "templating"):
        if field not in d:
            errors.append(f"{path}: missing {field}")
    names = [v.get("name") for v in d.get("templating", {}).get("list", [])]
    if "datasource" not in names:
        errors.append(f"{path}: no datasource variable")
    ids = set()
    for p in d.get("panels", []):
        where = f"{path}: panel {p.get('title')!r}"
        gp = p.get("gridPos", {})
        if not all(isinstance(gp.get(k), int) for k in ("x", "y", "w", "h")) or gp.get("x", 0) + gp.get("w", 0) > 24:
            errors.append(f"{where}: gridPos must have integer x, y, w, h within 24 columns")
        if p.get("id") in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"{where}: datasource must be the ${{datasource}} variable (no instance UIDs)")
        if not p.get("targets"):
            errors.append(f"{where}: no targets")
        for t in p.get("targets", []):
            if not t.get("expr") or not t.get("refId"):
                errors.append(f"{where}: a target needs expr and refId")
    if "uid" in d and len(d["uid"]) > 40:
        errors.append(f"{path}: uid longer than Grafana's 40 characters")
    return errors


def main():
    binary, source = sys.argv[1], sys.argv[2]
    work = h.temp_workdir("greenlight-grafana-test-")
    started = time.time()
    failures = []
    try:
        demo = h.Demo(binary, source, work, h.demo_config(source, probe_interval="2s"))
        prom_port = h.free_port()
        prom_cfg = os.path.join(work, "prometheus.yml")
        with open(prom_cfg, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n"
                    f"  - job_name: greenlight\n    static_configs: [{{targets: ['127.0.0.1:{demo.admin_port}']}}]\n"
                    f"  - job_name: greenlight-proxy\n    static_configs: [{{targets: ['127.0.0.1:{demo.proxy_admin_port}']}}]\n")
        h.start(["prometheus", f"--config.file={prom_cfg}", f"--storage.tsdb.path={work}/tsdb",
                 f"--web.listen-address=127.0.0.1:{prom_port}"], os.path.join(work, "prometheus.log"))
        prom = f"http://127.0.0.1:{prom_port}"

        def query(expr, range_query):
            if range_query:
                end = time.time()  # the last step lands on `end`: what Prometheus has now is seen
                params = {"query": expr, "start": end - int(end - started + 5), "end": end, "step": "1"}
                url = prom + "/api/v1/query_range?" + urllib.parse.urlencode(params)
            else:
                url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            status, text = h.http("GET", url)
            body = json.loads(text)
            if status != 200 or body.get("status") != "success":
                return None, body.get("error", text)
            return body["data"]["result"], None

        h.wait_until(lambda: (query('up{job=~"greenlight.*"} == 1', False)[0] or []).__len__() == 2, 60,
                     "Prometheus to scrape the demo and its proxy")

        # A failing OEM: failures by reason, a firing alert, an unhealthy probe.
        demo.inject_fault("ford", {"error_rate": 1, "status": 503})
        h.wait_until(lambda: any(a["labels"]["alertname"] == "ProbeFailing" and a["state"] == "firing"
                                 for a in demo.api("GET", "/api/v1/alerts")[1]["alerts"]), 60, "ProbeFailing to fire for ford")
        demo.clear_fault("ford")

        # One rollout promoted, then one aborted (rolled back).
        status, body = demo.api("POST", "/api/v1/rollouts/vehicles/start", {"release": "v2"})
        assert status == 200, body
        demo.wait_for_phase("promoted", 120)
        status, body = demo.api("POST", "/api/v1/rollouts/vehicles/start", {"release": "v3"})
        assert status == 200, body
        demo.wait_for_phase("shifting", 60)
        status, body = demo.api("POST", "/api/v1/rollouts/vehicles/abort", {"reason": "dashboard test"})
        assert status == 200, body
        demo.wait_for_phase("rolled-back", 60)
        # Until Prometheus has scraped the final counters (range queries below end now, step 1 s).
        for counter in ("promotions", "rollbacks"):
            h.wait_until(lambda: query(f"increase(greenlight_rollout_{counter}_total[1m]) > 0", False)[0], 30,
                         f"the {counter} in Prometheus")

        dashboards = sorted(glob.glob(os.path.join(source, "dashboards", "grafana", "*.json")))
        assert len(dashboards) == 4, dashboards
        checked = 0
        for path in dashboards:
            name = os.path.basename(path)
            with open(path) as f:
                d = json.load(f)
            failures += check_dashboard_shape(name, d)
            for v in d["templating"]["list"]:
                if v["type"] != "query":
                    continue
                q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                metric, label = q[len("label_values("):-1].rsplit(",", 1)
                result, err = query(f"count by ({label.strip()}) ({fill(metric)})", False)
                checked += 1
                if err or not result:
                    failures.append(f"{name}: variable {v['name']}: {q} -> {err or 'no values'}")
            for a in d.get("annotations", {}).get("list", []):
                result, err = query(fill(a["expr"]), True)
                checked += 1
                if err or not result:
                    failures.append(f"{name}: annotation {a['name']!r}: {a['expr']} -> {err or 'no series'}")
            for p in d["panels"]:
                for t in p.get("targets", []):
                    result, err = query(fill(t["expr"]), not t.get("instant", False))
                    checked += 1
                    if err or not result:
                        failures.append(f"{name}: panel {p['title']!r} {t['refId']}: {t['expr']} -> {err or 'no series'}")
        print(f"checked {checked} queries of {len(dashboards)} dashboards against Prometheus")
    finally:
        h.stop_all()
    h.finish(failures)


if __name__ == "__main__":
    main()
