"""Helpers shared by the benchmark scripts: ports, process CPU and memory from /proc, waiting
for a server to answer."""
import os
import socket
import subprocess
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_split(pid):
    """(user, system) CPU seconds of one process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def cpu_seconds(pid):
    """User + system CPU seconds of one process."""
    return sum(cpu_split(pid))


def tree_cpu_split(pid):
    """(user, system) CPU seconds of a process and its children (nginx workers, haproxy's worker)."""
    user, system = cpu_split(pid)
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for c in children:
        u, s = tree_cpu_split(int(c))
        user, system = user + u, system + s
    return user, system


def machine_busy_seconds():
    """CPU seconds all processors have spent running something since boot: user, nice, system,
    interrupts (not idle, I/O wait or time the hypervisor gave to other machines)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / TICKS


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def tree_pss_kib(pid):
    """Proportional set size (KiB) of a process and its children: memory shared between an
    nginx's or HAProxy's processes counted once, not once per process."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        pss = next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return pss + sum(tree_pss_kib(int(c)) for c in children)


def settled_pss(pid, seconds):
    """A proxy's proportional set size (KiB) once it has stopped moving (by less than 64 KiB in
    0.2 s), or after `seconds`."""
    last, deadline = tree_pss_kib(pid), time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = tree_pss_kib(pid)
        if abs(now - last) < 64:
            return now
        last = now
    return last


def wait_http(url, deadline_s=30, context=None):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")
