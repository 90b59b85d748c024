"""Children in their own process groups, CPU accounting from /proc, and log scanning."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

CHILDREN = []  # (name, Popen, log file) of everything this benchmark started


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name, argv, env, log_dir, cwd=None):
    """Start a child in its own session (process group) so that stop() also reaches the
    workers it forks (gunicorn, qcluster)."""
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop())
    proc = subprocess.Popen(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    CHILDREN.append((name, proc, log))
    return proc


def stop(proc, grace=20):
    """SIGTERM the child itself, then SIGKILL whatever is left of its process group.

    Only the leader gets SIGTERM, so gunicorn's master and django-q2's sentinel stop their
    workers in order. SIGTERM to the whole group at once (what systemd's default
    KillMode=control-group does) leaves `manage.py qcluster` hanging: seen here, >30 s."""
    for name, p, log in list(CHILDREN):
        if p is not proc:
            continue
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                print(f"  {name} did not stop in {grace} s; killing it", flush=True)
        # The leader may be gone while forked workers live on: always sweep the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)
        log.close()
        CHILDREN.remove((name, p, log))


def stop_all():
    for _, p, _ in reversed(list(CHILDREN)):
        stop(p, grace=10)


def wait_port(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def http_json(url, data=None, timeout=60):
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(
        url,
        data=body,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def _proc_table():
    """{pid: (ppid, ticks)} of every process, ticks = utime + stime + cutime + cstime."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_bytes()
        except OSError:
            continue
        rest = stat[stat.rindex(b")") + 2 :].split()
        table[int(d)] = (int(rest[1]), sum(int(x) for x in rest[11:15]))
    return table


def find_pid(comm):
    """The pid of a system daemon (parent pid 1) by command name, for CPU accounting."""
    for pid, (ppid, _) in _proc_table().items():
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if name == comm and ppid == 1:
            return pid
    return None


def cpu_seconds(watch):
    """CPU seconds used so far by each watched process tree, including children that have
    exited and been reaped inside the tree: django-q2 recycles a worker every 500 tasks
    and PostgreSQL backends come and go, so live processes alone would undercount."""
    table = _proc_table()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for name, root in watch.items():
        if not root or root not in table:
            out[name] = None
            continue
        total, stack = 0, [root]
        while stack:
            pid = stack.pop()
            total += table[pid][1]
            stack.extend(children.get(pid, ()))
        out[name] = total / os.sysconf("SC_CLK_TCK")
    return out


def pss_mb(root):
    """Proportional set size (MB) of a process tree: what it really costs in memory."""
    if not root:
        return None
    table = _proc_table()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        stack.extend(children.get(pid, ()))
    return round(total / 1024)


def machine_busy():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


class CpuSampler(threading.Thread):
    """Samples cpu_seconds() and machine_busy() twice a second during a load, so CPU can
    be read over exactly the sending phase (first send to last acknowledgement)."""

    def __init__(self, watch, pss_of=()):
        super().__init__(daemon=True)
        self.watch, self.samples, self.done = dict(watch), [], threading.Event()
        self.pss_of, self.pss_peak = tuple(pss_of), {}

    def run(self):
        tick = 0
        while True:
            self.samples.append((time.time(), cpu_seconds(self.watch), machine_busy()))
            if tick % 4 == 0:  # smaps_rollup costs more: every 2 s is enough for a peak
                for name in self.pss_of:
                    value = pss_mb(self.watch.get(name))
                    if value is not None:
                        self.pss_peak[name] = max(self.pss_peak.get(name, 0), value)
            tick += 1
            if self.done.wait(0.5):
                return

    def stop(self):
        self.done.set()
        self.join(5)

    def usage(self, t0, t1):
        """% of one core per component between the samples nearest to t0 and t1."""
        if len(self.samples) < 2:
            return {}
        a = min(self.samples, key=lambda s: abs(s[0] - t0))
        b = min(self.samples, key=lambda s: abs(s[0] - t1))
        if b[0] - a[0] < 1:
            return {}
        out = {
            name: round(100 * (b[1][name] - a[1][name]) / (b[0] - a[0]))
            for name in a[1]
            if a[1][name] is not None and b[1].get(name) is not None
        }
        busy, total = b[2][0] - a[2][0], b[2][1] - a[2][1]
        out["machine"] = round(100 * os.cpu_count() * busy / max(1, total))
        return out


# ----------------------------------------------------------------------- logs

ERROR_WORDS = (" ERROR ", " CRITICAL ", "Traceback", "[ERROR]", "[CRITICAL]", "WORKER TIMEOUT")
PG_LOG_DIR = Path("/var/log/postgresql")


def log_size(path):
    return path.stat().st_size if path and path.exists() else 0


def read_from(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def scan_log(path, offset):
    """Count the error lines a log got since `offset`, by their message."""
    if not path.exists():
        return {}
    found = {}
    for line in read_from(path, offset).splitlines():
        if any(w in line for w in ERROR_WORDS):
            # "2026-01-01 12:00:00,123 ERROR logger message" -> "ERROR logger message"
            key = line.split(" ", 2)[-1] if line[:4].isdigit() else line
            key = re.sub(r"\d+", "N", key)[:100]  # "trigger 3546 failed" -> "trigger N failed"
            found[key] = found.get(key, 0) + 1
    return found


def pg_log_file():
    try:
        logs = sorted(PG_LOG_DIR.glob("postgresql-*.log"), key=lambda p: p.stat().st_mtime)
        return logs[-1] if logs and os.access(logs[-1], os.R_OK) else None
    except OSError:
        return None


def scan_pg_log(path, offset, db_name):
    """PostgreSQL's errors for one database since `offset` (Debian's log_line_prefix has
    user@db): unique violations, deadlocks, lock or serialization failures."""
    found = {}
    for line in read_from(path, offset).splitlines():
        if f"@{db_name} " not in line:
            continue
        for level in ("ERROR:", "FATAL:", "PANIC:"):
            if level in line:
                key = level + " " + re.sub(r"\d+", "N", line.split(level, 1)[1].strip())[:100]
                found[key] = found.get(key, 0) + 1
    return found
