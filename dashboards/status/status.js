// Greenlight's status page: polls the admin JSON API every 2 s and renders probes (grouped by
// OEM), alerts, rollouts (with actions) and the rollout audit tail. Every value from the API is
// put into the page as text (textContent), never as HTML. Roles are enforced by the server; the
// page only shows what the server answered.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "greenlight-token";
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  return { status: res.status, ok: res.ok, data, text };
}

function badge(text, cls) { return el("span", { class: "badge " + (cls || text) }, text); }

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function duration(seconds) {
  if (seconds < 60) return Math.round(seconds) + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
  return Math.floor(seconds / 3600) + " h " + Math.round((seconds % 3600) / 60) + " min";
}

// Latency of the last runs as an inline SVG line; failed runs are red dots.
function sparkline(recent) {
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 90 22");
  svg.setAttribute("role", "img");
  if (!recent || recent.length < 2) {
    svg.setAttribute("aria-label", "not enough runs yet");
    return svg;
  }
  const max = Math.max(...recent.map((r) => r.duration_ms), 1);
  const step = 88 / (recent.length - 1);
  const pts = recent.map((r, i) => [1 + i * step, 21 - (r.duration_ms / max) * 19]);
  const line = document.createElementNS(svgNs, "polyline");
  line.setAttribute("points", pts.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" "));
  svg.append(line);
  recent.forEach((r, i) => {
    if (r.success) return;
    const dot = document.createElementNS(svgNs, "circle");
    dot.setAttribute("class", "bad");
    dot.setAttribute("cx", pts[i][0].toFixed(1));
    dot.setAttribute("cy", pts[i][1].toFixed(1));
    dot.setAttribute("r", "2");
    svg.append(dot);
  });
  const failed = recent.filter((r) => !r.success).length;
  svg.setAttribute("aria-label", `last ${recent.length} runs: max ${Math.round(max)} ms, ${failed} failed`);
  return svg;
}

// What went wrong in the last run: the first failed condition with its actual value, else the message.
function whyFailed(last) {
  if (!last || last.success) return "";
  for (const step of last.steps || []) {
    for (const c of step.conditions || []) {
      if (!c.passed) {
        const where = (last.steps.length > 1 ? step.name + ": " : "");
        return where + c.condition + (c.error ? " (" + c.error + ")" : " — actual: " + c.actual);
      }
    }
    if (!step.success) return (last.steps.length > 1 ? step.name + ": " : "") + (step.message || step.reason);
  }
  return last.message || last.reason;
}

function renderProbes(probes) {
  const groups = new Map();
  for (const p of probes) {
    const key = (p.labels && (p.labels.oem || p.labels.integration)) || "other";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(p);
  }
  const failingIn = (list) => list.filter((p) => p.health === "unhealthy").length;
  const names = [...groups.keys()].sort((a, b) => failingIn(groups.get(b)) - failingIn(groups.get(a)) || a.localeCompare(b));
  const container = el("div", { class: "groups" });
  for (const name of names) {
    const list = groups.get(name).sort((a, b) => a.name.localeCompare(b.name));
    const failing = failingIn(list);
    const rows = list.map((p) => {
      const last = p.last;
      return el("tr", { "data-probe": p.name, "data-health": p.health },
        el("td", {}, badge(p.health)),
        el("td", {}, el("div", {}, p.name),
          el("div", { class: "muted" }, last ? `${Math.round(last.duration_ms)} ms · ${ago(last.started_at)}` : "not run yet")),
        el("td", { class: "detail" }, whyFailed(last)),
        el("td", { class: "col-spark" }, sparkline(p.recent)));
    });
    container.append(el("section", { class: "group" + (failing ? " failing" : ""), "data-oem": name, "aria-label": "OEM " + name },
      el("h3", {}, name, failing ? badge(failing + " failing", "unhealthy") : badge("all healthy", "healthy")),
      el("table", {},
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Health"), el("th", { scope: "col" }, "Probe"),
          el("th", { scope: "col" }, "Failed condition"), el("th", { scope: "col", class: "col-spark" }, "Latency"))),
        el("tbody", {}, rows))));
  }
  $("probe-groups").replaceChildren(container);
  return probes.filter((p) => p.health === "unhealthy").length;
}

function renderAlerts(payload) {
  const alerts = (payload && payload.alerts) || [];
  if (!alerts.length) {
    $("alert-list").replaceChildren(el("p", { class: "muted" }, "No alerts."));
    return 0;
  }
  const rows = alerts.map((a) => {
    const muted = a.silenced_by.length ? "silenced" : a.inhibited ? "inhibited" : "";
    return el("tr", { "data-alert": a.labels.alertname, "data-state": a.state },
      el("td", {}, badge(a.state), muted ? " " : "", muted ? badge(muted) : ""),
      el("td", {}, a.labels.alertname),
      el("td", {}, a.annotations.summary || Object.entries(a.labels).map(([k, v]) => k + "=" + v).join(", ")),
      el("td", {}, duration(a.for_seconds)));
  });
  $("alert-list").replaceChildren(el("table", {},
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "State"), el("th", { scope: "col" }, "Alert"),
      el("th", { scope: "col" }, "Summary"), el("th", { scope: "col" }, "For"))),
    el("tbody", {}, rows)));
  return alerts.filter((a) => a.state === "firing" && !a.silenced_by.length && !a.inhibited).length;
}

const DESTRUCTIVE = { promote: "move the new release on: past a waiting gate to its next step, otherwise all traffic to it", abort: "send all traffic back to the stable release and stop the rollout",
  rollback: "go back to the previous release" };

function confirmAction(service, action) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-h").textContent = `${action} ${service}?`;
    $("confirm-text").textContent = `This will ${DESTRUCTIVE[action]}.`;
    $("confirm-reason").value = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? $("confirm-reason").value : null), { once: true });
    dialog.showModal();
  });
}

async function act(service, action) {
  let reason = "";
  if (DESTRUCTIVE[action]) {
    reason = await confirmAction(service, action);
    if (reason === null) return;
  }
  const r = await api("POST", `/api/v1/rollouts/${encodeURIComponent(service)}/${action}`, reason ? { reason } : {});
  const out = $("action-result");
  if (r.ok) {
    out.className = "";
    out.textContent = `${action} ${service}: done (phase ${r.data.phase}).`;
  } else {
    out.className = "error";
    const why = r.status === 401 || r.status === 403 ? "refused: your token may not do this" : "refused";
    out.textContent = `${action} ${service}: ${why} (HTTP ${r.status}: ${(r.text || "").trim()})`;
  }
  poll();
}

function renderRollouts(services) {
  if (!services) return;
  const cards = services.map((s) => {
    const cand = s.candidate, stable = s.stable;
    const weights = el("div", { class: "weights", role: "img", "aria-label": `traffic: blue ${s.weights.blue}%, green ${s.weights.green}%` },
      ["blue", "green"].map((c) => el("span", { class: c, style: `width:${s.weights[c]}%` }, s.weights[c] >= 12 ? `${c} ${s.weights[c]}%` : "")));
    // Results read "phase: verdict (detail)"; the verdict word picks the colour, the text says it all.
    const verdictOf = (r) => {
      const m = /: (pass|fail|inconclusive|done|ready|failed|timeout)\b/.exec(r);
      if (!m) return "info";
      return { done: "pass", ready: "pass", failed: "fail", timeout: "fail" }[m[1]] || m[1];
    };
    const verdicts = (s.results || []).slice(-8).map((r) => el("li", {}, badge(verdictOf(r)), " ", r));
    // Only what applies in this phase is enabled; the server decides either way.
    const active = !["idle", "promoted", "rolled-back"].includes(s.phase);
    const applies = { promote: active, pause: active && !s.paused, resume: active && s.paused, abort: active,
      rollback: s.phase === "promoted" };
    const buttons = ["promote", "pause", "resume", "abort", "rollback"].map((a) =>
      el("button", { type: "button", "data-action": a, disabled: !applies[a], class: DESTRUCTIVE[a] && a !== "promote" ? "danger" : "",
        onclick: () => act(s.service, a) }, a));
    return el("article", { class: "rollout", "data-service": s.service, "data-phase": s.phase },
      el("h3", {}, s.service, badge(s.phase), s.paused ? badge("paused") : "", s.awaiting_promotion ? badge("waiting for promote", "paused") : ""),
      el("dl", {},
        el("dt", {}, "stable"), el("dd", {}, `${s.stable_release || "—"} on ${stable}`),
        el("dt", {}, "new"), el("dd", {}, s.candidate_release ? `${s.candidate_release} on ${cand}` : "—"),
        el("dt", {}, "in phase"), el("dd", {}, s.seconds_in_phase === null ? "—" : duration(s.seconds_in_phase)),
        el("dt", {}, "steps"), el("dd", {}, (s.steps || []).join(" → ") + "%"),
        s.reason ? [el("dt", {}, "reason"), el("dd", {}, s.reason)] : []),
      weights,
      verdicts.length ? el("ul", { class: "verdicts", "aria-label": "analysis and checks, newest last" }, verdicts)
        : el("p", { class: "muted" }, "no analysis yet"),
      el("div", { class: "actions" }, buttons));
  });
  $("rollout-list").replaceChildren(cards.length ? el("div", { class: "rollouts" }, cards) : el("p", { class: "muted" }, "No rollouts configured."));
}

async function renderAudit(services) {
  const lines = [];
  for (const s of services || []) {
    const r = await api("GET", `/api/v1/rollouts/${encodeURIComponent(s.service)}/history`);
    if (r.ok && Array.isArray(r.data)) lines.push(...r.data);
  }
  lines.sort((a, b) => (a.time < b.time ? 1 : -1));
  $("audit-list").replaceChildren(...lines.slice(0, 10).map((l) =>
    el("li", {}, el("time", { datetime: l.time }, l.time), ` ${l.actor}: ${l.action} ${l.service}`,
      l.release ? ` ${l.release}` : "", l.detail ? ` — ${l.detail}` : "")));
  if (!lines.length) $("audit-list").replaceChildren(el("li", { class: "muted" }, "Nothing yet."));
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const [probes, alerts, rollouts] = await Promise.all([api("GET", "/api/v1/probes"), api("GET", "/api/v1/alerts"), api("GET", "/api/v1/rollouts")]);
    if (probes.status === 401) {
      $("error").hidden = false;
      $("error").textContent = "This server needs a token: enter a viewer or operator token above.";
      $("summary").textContent = "Not signed in.";
      return;
    }
    $("error").hidden = true;
    const failing = probes.ok ? renderProbes(probes.data) : 0;
    const firing = alerts.ok ? renderAlerts(alerts.data) : 0;
    if (rollouts.ok) {
      renderRollouts(rollouts.data);
      await renderAudit(rollouts.data);
    }
    const total = probes.ok ? probes.data.length : 0;
    $("summary").textContent = failing || firing
      ? `${failing} of ${total} probes failing · ${firing} alert${firing === 1 ? "" : "s"} firing`
      : `All ${total} probes healthy · no alerts firing`;
    document.title = (failing || firing ? `(${failing + firing}) ` : "") + "Greenlight status";
  } catch (e) {
    $("error").hidden = false;
    $("error").textContent = "Cannot reach the server: " + e.message;
  } finally {
    polling = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    $("whoami").textContent = t ? "token set for this tab" : "no token";
    poll();
  });
  $("whoami").textContent = token() ? "token set for this tab" : "";
  poll();
  setInterval(poll, POLL_MS);
});
