"""Starts `greenlight demo` (and other real processes) on 127.0.0.1 ports picked by the OS, for
the dashboard and status page tests. Every process started here is stopped by `stop_all`.
Waiting is on conditions with a deadline, never on a fixed sleep."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

_processes = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except AssertionError:
            raise  # a definite failure (e.g. the process exited): no point waiting
        except Exception as e:  # noqa: BLE001 - the condition may not be checkable yet
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def http(method, url, body=None, token=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start(argv, log_path, env=None):
    log = open(log_path, "w")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    _processes.append((p, log))
    return p


def stop_all():
    for p, log in reversed(_processes):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        log.close()
    _processes.clear()


def demo_config(source_dir, probe_interval="2s", bake="2s", admin_tokens=None):
    """examples/demo.yaml with faster probes and analysis (and tokens, if given)."""
    with open(os.path.join(source_dir, "examples", "demo.yaml")) as f:
        text = f.read()
    text = text.replace("probe_defaults:\n  interval: 10s\n  timeout: 5s",
                        f"probe_defaults:\n  interval: {probe_interval}\n  timeout: {probe_interval}")
    text = text.replace("bake: 2s", f"bake: {bake}")
    text = text.replace("analysis: {interval: 5s, count: 2", "analysis: {interval: 3s, count: 2")
    if admin_tokens:
        lines = "".join(f"    - {{name: {name}, role: {role}, token: \"{token}\"}}\n" for name, role, token in admin_tokens)
        text = re.sub(r"admin:\n  listen: 127.0.0.1:9470\n", "admin:\n  listen: 127.0.0.1:9470\n  tokens:\n" + lines, text, count=1)
    assert "interval: " + probe_interval in text, "examples/demo.yaml changed: update demo_config()"
    return text


class Demo:
    """A running `greenlight demo` with its own state directory and ports."""

    def __init__(self, binary, source_dir, workdir, config_text, token=None, env=None):
        self.workdir = workdir
        self.token = token
        self.admin_port = free_port()
        self.sim_admin_port = free_port()
        self.proxy_admin_port = free_port()
        config = os.path.join(workdir, "demo.yaml")
        with open(config, "w") as f:
            f.write(config_text)
        self.state_dir = os.path.join(workdir, "state")
        env = dict(os.environ, GREENLIGHT_DEMO_STATE_DIR=self.state_dir, **(env or {}))
        self.process = start([binary, "demo", "-c", config, "--admin-port", str(self.admin_port), "--sim-port", "0",
                              "--sim-admin-port", str(self.sim_admin_port), "--proxy-port", "0",
                              "--proxy-admin-port", str(self.proxy_admin_port)],
                             os.path.join(workdir, "demo.log"), env=env)
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.faults = f"http://127.0.0.1:{self.sim_admin_port}/faults"
        wait_until(lambda: self._ready(), 60, "the demo's admin API to be ready")

    def _ready(self):
        if self.process.poll() is not None:
            with open(os.path.join(self.workdir, "demo.log")) as f:
                raise AssertionError("greenlight demo exited:\n" + f.read()[-3000:])
        return http("GET", self.admin + "/readyz", timeout=2)[0] == 200

    def api(self, method, path, body=None, token=None):
        status, text = http(method, self.admin + path, body, token or self.token)
        return status, (json.loads(text) if text and text.lstrip()[:1] in "[{" else text)

    def rollout(self):
        status, body = self.api("GET", "/api/v1/rollouts/vehicles")
        assert status == 200, body
        return body

    def wait_for_phase(self, phase, timeout):
        """Waits until the rollout reaches `phase`. A different final phase fails at once; a
        timeout reports the rollout's last state and the end of the demo's log."""
        final = {"promoted", "rolled-back"}
        last = {}

        def reached():
            last.clear()
            last.update(self.rollout())
            if last.get("phase") != phase and last.get("phase") in final and phase in final:
                raise AssertionError(f"the rollout ended {last.get('phase')} instead of {phase}: {json.dumps(last)}")
            return last.get("phase") == phase
        try:
            return wait_until(reached, timeout, f"the rollout to be {phase}")
        except AssertionError as e:
            with open(os.path.join(self.workdir, "demo.log")) as f:
                tail = f.read()[-4000:]
            raise AssertionError(f"{e}\nlast rollout state: {json.dumps(last)}\ndemo log (end):\n{tail}") from None

    def inject_fault(self, target, fault):
        status, text = http("PUT", f"{self.faults}/{target}", fault)
        assert status == 200, text

    def clear_fault(self, target):
        http("DELETE", f"{self.faults}/{target}")


def finish(failures):
    """Ends a test script: every failure listed and exit 1, or "ok"."""
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print("ok")


def temp_workdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)
