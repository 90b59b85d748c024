#!/usr/bin/env python3
"""End-to-end webhook benchmark of Kanri in its production shape, with the shared harness.

    .venv/bin/python benchmarks/webhook_e2e.py             # fresh DB, full matrix (~22 min)
    .venv/bin/python benchmarks/webhook_e2e.py --reuse-db  # skip the ~50 s migrate
    .venv/bin/python benchmarks/webhook_e2e.py --quick     # one config, small loads (~1 min)

What runs (loopback only; every child in its own process group, all killed at exit):
- PostgreSQL database `kanri_bench`, created fresh and migrated unless --reuse-db;
- Redis db 14 as django-q2's broker (FLUSHDB'd before each configuration);
- gunicorn (sync workers, -w G) serving config.wsgi, and `manage.py qcluster` (QUEUE_WORKERS=Q),
  with DEBUG off and every setting from the environment (ENV_FILE= so no .env is read);
- the harness sink (/work/shared/bench/sink.py) as Slack's Web API;
- the project's fake Stripe API (tests.fakes.stripe_api). The sync batches
  (integrations.stripe_webhooks.sync_webhooks) re-fetch each event's object from Stripe;
  against a closed port every one of those fails, which measures a
  Stripe outage, not Kanri. So by default each event gets its own payment intent and customer
  seeded in the fake, and one extra load adds Stripe-like latency (--stripe closed is there
  to measure the outage);
- /work/shared/bench/loadgen.py, closed and open loop, against the real webhook URL.

Printed: one row per load (ack throughput and latency, end-to-end runs/s and latency,
lost/duplicated/unexpected Slack posts, DB checks), ratios against the reference figures of
/work/shared/bench/README.md, CPU per component, PostgreSQL and Kanri log errors, and with
--profile a py-spy summary. Raw loadgen output and logs stay in --out-dir.

It writes only under benchmarks/ (results/), into its own database and Redis db 14.
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent  # benchmarks/
ROOT = HERE.parent  # the Kanri checkout
VENV_PY = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
HARNESS = Path("/work/shared/bench")
sys.path.insert(0, str(HARNESS))
import loadgen  # noqa: E402  (the harness's signing and /proc helpers, standard library only)

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_LOG_DIR = Path("/var/log/postgresql")
REDIS_URL = "redis://127.0.0.1:6379/14"
QUEUE_KEY = "django_q:kanri:q"  # django-q2's Redis list for QUEUE_NAME=kanri
WEBHOOK_SECRET = "whsec_benchbenchbenchbenchbenchbench"  # loadgen's default secret
STRIPE_KEY = "sk_test_" + "0" * 24
ACCOUNT_ID = "acct_kanri_local"  # what the fake Stripe answers for GET /v1/account
ENDPOINT_ID = "we_kanri_bench"
WORKFLOW_NAME = "Bench: notify Slack on paid"

# /work/shared/bench/README.md, same harness on a 2-core machine like this one.
REF_DJSTRIPE_INGEST = 84.0  # dj-stripe stock webhook view, ingestion only
REF_DJANGO_Q = (70.0, 90.0)  # django-q2 with default settings, tasks/s
REF_BARE_DJANGO = (720.0, 930.0)  # bare Django view, end to end, events/s

CHILDREN = []  # (name, Popen, log file) of everything this script started


# ----------------------------------------------------------------------- processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name, argv, env, log_dir, cwd=ROOT):
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
        with contextlib.suppress(ProcessLookupError):
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


def find_pid(comm):
    """The pid of a system daemon (parent pid 1) by command name, for CPU accounting."""
    for pid, (ppid, _, _) in loadgen._proc_table().items():
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
    ticks, parents = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_bytes()
        except OSError:
            continue
        rest = stat[stat.rindex(b")") + 2 :].split()
        parents[int(d)] = int(rest[1])
        ticks[int(d)] = sum(int(x) for x in rest[11:15])  # utime stime cutime cstime
    children = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for name, root in watch.items():
        if not root or root not in ticks:
            out[name] = None
            continue
        total, stack = 0, [root]
        while stack:
            pid = stack.pop()
            total += ticks[pid]
            stack.extend(children.get(pid, ()))
        out[name] = total / os.sysconf("SC_CLK_TCK")
    return out


class CpuSampler(threading.Thread):
    """Samples cpu_seconds() and machine_busy() twice a second during a load, so CPU can
    be read over exactly the sending phase (first send to last acknowledgement)."""

    def __init__(self, watch):
        super().__init__(daemon=True)
        self.watch, self.samples, self.done = dict(watch), [], threading.Event()

    def run(self):
        while True:
            self.samples.append((time.time(), cpu_seconds(self.watch), machine_busy()))
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


def machine_busy():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


# ----------------------------------------------------------------------- environment


def kanri_env(db_name, *, stripe_host, sink_port, queue_workers=2):
    """What Kanri's processes get: every setting from variables, no .env file."""
    env = dict(os.environ)
    env.update(
        {
            "ENV_FILE": "",  # do not read the developer's .env
            "DEBUG": "off",
            "SECRET_KEY": "kanri-bench-" + "x" * 40,  # web and cluster must share it
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_API_HOST": stripe_host,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
            "CONN_MAX_AGE": "60",
            "REDIS_URL": REDIS_URL,
            "QUEUE_NAME": "kanri",
            "QUEUE_WORKERS": str(queue_workers),
            "SLACK_API_URL": f"http://127.0.0.1:{sink_port}/api/",
            "SLACK_BOT_TOKEN": "xoxb-bench-token",
            "EMAIL_URL": "consolemail://",
            "LOG_LEVEL": "INFO",
            "QUEUE_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def manage(env, *args, timeout=600, capture=False, check=True):
    return subprocess.run(
        [str(VENV_PY), "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=check,
        timeout=timeout,
        text=True,
        capture_output=capture,
    )


# ----------------------------------------------------------------------- database


def prepare_database(db_name, reuse, env):
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
        if exists and not reuse:
            # FORCE: an interrupted earlier run may have left connections behind.
            conn.execute(f'DROP DATABASE "{db_name}" WITH (FORCE)')
        if not exists or not reuse:
            conn.execute(f'CREATE DATABASE "{db_name}"')
    # `migrate --check` exits non-zero while something is unapplied (a reused database may
    # predate a migration someone added since).
    if manage(env, "migrate", "--check", capture=True, check=False).returncode == 0:
        print(f"  {db_name} already migrated; reused", flush=True)
        return
    print(f"  migrating {db_name} (dj-stripe's migrations take ~50 s)…", flush=True)
    t0 = time.monotonic()
    manage(env, "migrate", "--noinput", "-v", "0", timeout=900)
    print(f"  migrated in {time.monotonic() - t0:.0f} s", flush=True)


# Run by `manage.py shell`: the rows a Kanri install has (made as tests/conftest.py's
# stripe_account fixture makes them) and the one workflow under test. Idempotent, and it
# pauses any other active workflow, so a reused database never doubles the Slack posts.
SETUP_CODE = r"""
import json
from django.conf import settings
from django.urls import reverse
from djstripe.models import Account, APIKey, WebhookEndpoint
from automations import workflows
from automations.models import Workflow

account, _ = Account.objects.get_or_create(id=ACCOUNT_ID, defaults={"livemode": False})
if not APIKey.objects.filter(secret=settings.STRIPE_SECRET_KEY).exists():
    APIKey.objects.create(secret=settings.STRIPE_SECRET_KEY, type="secret", livemode=False,
                          djstripe_owner_account=account)
endpoint, _ = WebhookEndpoint.objects.update_or_create(
    id=ENDPOINT_ID,
    defaults=dict(livemode=False, enabled_events=["*"], secret=SECRET, status="enabled",
                  url="http://127.0.0.1/", djstripe_owner_account=account),
)
for other in Workflow.objects.filter(status=Workflow.Status.ACTIVE).exclude(name=NAME):
    other.status = Workflow.Status.PAUSED
    other.save()
workflow = Workflow.objects.filter(name=NAME, status=Workflow.Status.ACTIVE).first()
if workflow is None:
    workflow = workflows.create({
        "name": NAME,
        "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
        "conditions": [[{"field": "trigger.data.object.amount", "op": "gt", "value": 1000,
                         "currency": "usd"}]],
        "steps": [{"name": "notify", "kind": "slack.post_message",
                   "config": {"channel": "C0BENCH", "text": "Paid {{trigger.id}}"}}],
    })
    workflows.activate(workflow)
path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint.djstripe_uuid})
print("BENCH-SETUP " + json.dumps({"path": path, "workflow": workflow.pk}))
"""


def create_rows(env):
    code = (
        f"ACCOUNT_ID={ACCOUNT_ID!r}; ENDPOINT_ID={ENDPOINT_ID!r}; "
        f"SECRET={WEBHOOK_SECRET!r}; NAME={WORKFLOW_NAME!r}\n" + SETUP_CODE
    )
    out = manage(env, "shell", "-c", code, capture=True, timeout=120).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH-SETUP "))
    return json.loads(line.split(" ", 1)[1])


def db_connect(db_name):
    import psycopg

    return psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db_name}", autocommit=True)


# ----------------------------------------------------------------------- fake Stripe


def serve_fake_stripe(port):
    """Hidden mode (--serve-fake-stripe PORT): the project's fake Stripe API, plus a delay
    per /v1 call settable at run time (POST /_config/bench/latency {"ms": N}), to model Stripe's
    real round trip: the fake answers in ~1 ms, api.stripe.com in ~100-300 ms, and that
    time holds a queue worker."""
    sys.path.insert(0, str(ROOT))
    from aiohttp import web

    from tests.fakes import stripe_api

    latency = {"ms": 0.0}

    @web.middleware
    async def delay(request, handler):
        if latency["ms"] and request.path.startswith("/v1/"):
            await asyncio.sleep(latency["ms"] / 1000)
        return await handler(request)

    async def set_latency(request):
        latency["ms"] = float((await request.json())["ms"])
        return web.json_response(latency)

    stripe_api.app.middlewares.insert(0, delay)
    stripe_api.app.router.add_post("/_config/bench/latency", set_latency)
    sys.argv = ["stripe_api", str(port)]
    stripe_api.main()


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


# What the fake serves for each event: a customer, and a succeeded payment intent with no
# payment method or charge, so the sync fetches what a minimal real payment_intent.succeeded
# needs and no more (dj-stripe fetches the intent, then its customer).
# fmt: off
CUSTOMER = {
    "object": "customer", "livemode": False, "metadata": {}, "balance": 0, "currency": "usd",
    "default_source": None, "delinquent": False, "description": None, "discount": None,
    "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None},
    "preferred_locales": [], "tax_exempt": "none", "address": None, "phone": None,
    "shipping": None,
}
PAYMENT_INTENT = {
    "object": "payment_intent", "amount": 5000, "amount_capturable": 0,
    "amount_received": 5000, "currency": "usd", "status": "succeeded", "livemode": False,
    "metadata": {}, "payment_method": None, "latest_charge": None,
    "capture_method": "automatic", "confirmation_method": "automatic",
    "payment_method_types": ["card"], "description": None, "receipt_email": None,
    "canceled_at": None, "cancellation_reason": None, "last_payment_error": None,
    "next_action": None, "on_behalf_of": None, "setup_future_usage": None, "shipping": None,
    "statement_descriptor": None, "transfer_data": None, "transfer_group": None,
    "invoice": None, "review": None, "application": None,
}
# fmt: on


def seed_stripe_objects(stripe_url, tag, n):
    """Give every event its own payment intent and customer in the fake Stripe, as real
    traffic has, so that dj-stripe's re-fetch succeeds; return loadgen --objects lines."""
    http_json(stripe_url + "/_config/kanri/reset", {})  # also empties its request log
    objects, lines = [], []
    created = int(time.time()) - 60
    for i in range(n):
        pi, cus = f"pi_bench{tag}x{i:06d}", f"cus_bench{tag}x{i:06d}"
        objects.append(
            CUSTOMER
            | {"id": cus, "created": created, "email": f"buyer{i}@example.test"}
            | {"name": f"Buyer {i}", "invoice_prefix": f"B{i:06d}"}
        )
        objects.append(
            PAYMENT_INTENT
            | {"id": pi, "created": created, "customer": cus, "client_secret": pi + "_secret_x"}
        )
        lines.append(f"{pi} {cus}")
    for k in range(0, len(objects), 500):  # aiohttp refuses bodies over 1 MB
        http_json(stripe_url + "/_config/kanri/objects", objects[k : k + 500])
    return lines


def stripe_calls(stripe_url):
    """The fake Stripe's /v1 request log since this load's seeding reset it."""
    counts = {}
    for r in http_json(stripe_url + "/_config/kanri/requests"):
        key = f"{r['method']} {'/'.join(r['path'].split('/')[:3])}"
        counts[key] = counts.get(key, 0) + 1
    return counts


# ----------------------------------------------------------------------- one load


def run_load(load, ctx):
    """Run loadgen once, wait for Kanri to finish the work, and check the database."""
    label = load["label"]
    out_json = ctx["out_dir"] / f"{label}.json"
    raw = ctx["out_dir"] / f"{label}.raw.jsonl"
    n_events = load.get("n") or round(load["rate"] * load["duration"])
    cmd = [
        sys.executable,
        HARNESS / "loadgen.py",
        "--url",
        ctx["url"],
        "--secret",
        WEBHOOK_SECRET,
        "--sink",
        ctx["sink"],
        "--label",
        label,
        "--out",
        out_json,
        "--raw",
        raw,
        "--match-fraction",
        load["match"],
        "--resend-fraction",
        load.get("resend", 0.0),
        "--seed",
        ctx["seed"],
        "--max-wall",
        300,
        "--timeout",
        30,
        # A backlog drains after the last ack: allow for it, but stop once Slack is quiet.
        "--drain-timeout",
        ctx["drain_timeout"],
        "--drain-idle",
        15,
    ]
    ctx["seed"] += 1
    if "rate" in load:
        cmd += ["--rate", load["rate"], "--duration", load["duration"]]
    else:
        cmd += ["--concurrency", load["concurrency"], "--n", load["n"]]
    if load.get("warmup"):
        cmd += ["--warmup", load["warmup"]]
    if ctx["stripe_url"]:
        # Warm-up events refer to the objects after the measured ones: seed those too.
        tag = f"{ctx['run_id']}{ctx['seed']}"  # never an object an earlier run synced
        lines = seed_stripe_objects(ctx["stripe_url"], tag, n_events + load.get("warmup", 0))
        objects = ctx["out_dir"] / f"{label}.objects"
        objects.write_text("\n".join(lines) + "\n")
        cmd += ["--objects", objects]
        http_json(ctx["stripe_url"] + "/_config/bench/latency", {"ms": load.get("stripe_ms", 0)})
    marks = {n: log_size(ctx["out_dir"] / f"{n}.log") for n in ("gunicorn", "qcluster")}
    pg_log, pg_mark = pg_log_file(), None
    pg_mark = log_size(pg_log) if pg_log else None
    cpu0, busy0 = cpu_seconds(ctx["watch"]), machine_busy()
    sampler = CpuSampler(ctx["watch"])
    sampler.start()
    t_start = time.time()
    print(f"  {label}: {describe(load)} …", flush=True)
    profilers = start_profilers(ctx, label) if load.get("profile") and ctx["profile"] else []
    crash = None
    if load.get("crash_at"):
        crash = threading.Timer(load["crash_at"], crash_cluster, [ctx])
        crash.start()
    try:
        with open(ctx["out_dir"] / "loadgen.log", "a") as loadgen_log:
            subprocess.run(
                [str(c) for c in cmd],
                check=True,
                timeout=300 + ctx["drain_timeout"] + 180,
                stderr=loadgen_log,
            )
    finally:
        sampler.stop()
        if crash:
            crash.join()
        for proc in profilers:
            stop(proc, grace=30)  # py-spy writes its file at --duration or on SIGTERM
    summary = json.loads(out_json.read_text())
    rows = [json.loads(x) for x in raw.read_text().splitlines() if x.strip()]
    records = http_json(ctx["sink"] + "/_records")
    # Kanri still has work after the last Slack post (the syncs of non-matching events).
    settle = wait_until_settled(ctx, t_start)
    cpu1, busy1 = cpu_seconds(ctx["watch"]), machine_busy()
    if ctx["stripe_url"]:
        http_json(ctx["stripe_url"] + "/_config/bench/latency", {"ms": 0})
    wall = time.time() - t_start
    result = {
        "label": label,
        "load": describe(load),
        "summary": summary,
        "settle": settle,
        "wall_s": round(wall, 1),
        "cpu_ms_per_delivery": {
            name: round(1000 * (cpu1[name] - cpu0[name]) / max(1, len(rows)), 2)
            for name in cpu0
            if cpu0[name] is not None and cpu1.get(name) is not None and not load.get("crash_at")
        },
        "machine_busy_pct": round(
            100 * os.cpu_count() * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
        ),
    }
    result.update(e2e_throughput(rows, records))
    acked = [r["sent_wall_ns"] + r["ack_ns"] for r in rows if r["sent_wall_ns"] and r["ack_ns"]]
    if acked and not load.get("crash_at"):
        result["cpu_pct_sending"] = sampler.usage(result["first_send"], max(acked) / 1e9)
    result["db"] = check_database(ctx, rows, t_start)
    if ctx["stripe_url"]:
        result["stripe_calls"] = stripe_calls(ctx["stripe_url"])
    result["log_errors"] = {
        name: scan_log(ctx["out_dir"] / f"{name}.log", mark) for name, mark in marks.items()
    }
    if pg_log:
        result["log_errors"]["postgres"] = scan_pg_log(pg_log, pg_mark, ctx["db_name"])
    if load.get("crash_at") and ctx["crash_wait"]:
        result["recovery"] = wait_for_recovery(ctx, rows)
    print("    " + one_line(result), flush=True)
    return result


def describe(load):
    if "rate" in load:
        text = f"open {load['rate']:g}/s x {load['duration']:g}s"
    else:
        text = f"closed c={load['concurrency']} n={load['n']}"
    text += f", match {load['match']:g}"
    if load.get("resend"):
        text += f", resend {load['resend']:g}"
    if load.get("stripe_ms"):
        text += f", Stripe +{load['stripe_ms']:g} ms"
    if load.get("crash_at"):
        text += f", qcluster SIGKILL at {load['crash_at']:g}s"
    return text


def e2e_throughput(rows, records):
    """Slack posts per second for this load's matching events, from its first send to its
    last post: the rate Kanri actually carried work end to end."""
    matching = {r["evt"] for r in rows if r["match"]}
    sent = [r["sent_wall_ns"] for r in rows if r["sent_wall_ns"]]
    arrivals = [
        rec["t_ns"]
        for rec in records
        if rec["path"].endswith("chat.postMessage") and matching.intersection(rec["evt_ids"])
    ]
    if not sent or not arrivals:
        return {"runs_per_s": 0.0, "first_send": min(sent) / 1e9 if sent else None}
    span = (max(arrivals) - min(sent)) / 1e9
    return {
        "runs_per_s": round(len(arrivals) / span, 1) if span > 0 else None,
        "first_send": min(sent) / 1e9,
    }


def wait_until_settled(ctx, since_epoch):
    """Wait (bounded) until every webhook of this load is synced or has failed and no run
    is queued or running; return the seconds waited and what was still pending."""
    t0 = time.monotonic()
    last, last_change = None, time.monotonic()
    with db_connect(ctx["db_name"]) as conn:
        while True:
            state = conn.execute(
                "SELECT"
                " (SELECT count(*) FROM djstripe_webhookeventtrigger"
                "   WHERE created >= to_timestamp(%s) AND valid AND NOT processed"
                "   AND exception = ''),"
                " (SELECT count(*) FROM automations_run"
                "   WHERE created_at >= to_timestamp(%s) AND status IN ('queued', 'running'))",
                [since_epoch, since_epoch],
            ).fetchone()
            now = time.monotonic()
            if state != last:
                last, last_change = state, now
            if state == (0, 0):
                break
            # Stuck (nothing moved for 30 s: e.g. tasks lost with a killed worker) or out
            # of time: report what is left rather than wait for the 5-10 min sweepers.
            if now - last_change > 30 or now - t0 > ctx["drain_timeout"]:
                break
            time.sleep(0.5)
    return {
        "waited_s": round(time.monotonic() - t0, 1),
        "pending_triggers": last[0],
        "pending_runs": last[1],
        "redis_queue": redis_queue_len(),
    }


def check_database(ctx, rows, since_epoch):
    """What Kanri recorded for this load: a run per matching event, its status and steps,
    the webhook rows and dj-stripe's sync."""
    ids = sorted({r["evt"] for r in rows})
    matching = {r["evt"] for r in rows if r["match"]}
    with db_connect(ctx["db_name"]) as conn:
        runs = conn.execute(
            "SELECT trigger_key, status, attempt, created_at, started_at, finished_at"
            " FROM automations_run WHERE trigger_key = ANY(%s)",
            [ids],
        ).fetchall()
        steps = conn.execute(
            "SELECT s.status, count(*) FROM automations_runstep s"
            " JOIN automations_run r ON r.id = s.run_id WHERE r.trigger_key = ANY(%s)"
            " GROUP BY s.status",
            [ids],
        ).fetchall()
        # The event id is only in the body until the sync sets event_id: parse the body.
        triggers = conn.execute(
            "SELECT (body::jsonb)->>'id', processed, exception, extract(epoch FROM updated)"
            " FROM djstripe_webhookeventtrigger WHERE created >= to_timestamp(%s)",
            [since_epoch - 5],
        ).fetchall()
        events = conn.execute(
            "SELECT count(*) FROM djstripe_event WHERE id = ANY(%s)", [ids]
        ).fetchone()[0]
    id_set = set(ids)
    triggers = [t for t in triggers if t[0] in id_set]
    status, exceptions = {}, {}
    for r in runs:
        status[r[1]] = status.get(r[1], 0) + 1
    for t in triggers:
        if t[2]:
            exceptions[t[2][:70]] = exceptions.get(t[2][:70], 0) + 1
    queue_wait = [(r[4] - r[3]).total_seconds() * 1000 for r in runs if r[4]]
    execution = [(r[5] - r[4]).total_seconds() * 1000 for r in runs if r[5] and r[4]]
    done = [float(t[3]) for t in triggers if t[1]] + [r[5].timestamp() for r in runs if r[5]]
    return {
        "matching_events": len(matching),
        "runs": len(runs),
        "runs_for_non_matching": sum(1 for r in runs if r[0] not in matching),
        "run_status": status,
        "runs_retaken": sum(1 for r in runs if r[2] > 1),
        "step_status": dict(steps),
        "deliveries": len(rows),
        "triggers": len(triggers),
        "triggers_processed": sum(1 for t in triggers if t[1]),
        "triggers_failed": sum(1 for t in triggers if t[2]),
        "trigger_exceptions": exceptions,
        "stripe_events": events,
        "distinct_events": len(ids),
        "queue_wait_ms": (percentile(queue_wait, 50), percentile(queue_wait, 99)),
        "execution_ms": (percentile(execution, 50), percentile(execution, 99)),
        "last_task_done": max(done) if done else None,
    }


def percentile(values, p):
    """loadgen.py's rank rule, so both sides of the table agree."""
    return loadgen.pct(sorted(values), p)


def redis_queue_len():
    import redis

    return redis.from_url(REDIS_URL).llen(QUEUE_KEY)


def log_size(path):
    return path.stat().st_size if path.exists() else 0


def read_from(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


ERROR_WORDS = (" ERROR ", " CRITICAL ", "Traceback", "[ERROR]", "[CRITICAL]", "WORKER TIMEOUT")


def scan_log(path, offset):
    """Count the error lines a Kanri log got since `offset`, by their message."""
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
    """PostgreSQL's errors for our database since `offset` (Debian's log_line_prefix has
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


# ----------------------------------------------------------------------- profiling


def start_profilers(ctx, label, seconds=15):
    """py-spy on gunicorn and on qcluster with their forked workers, for the first
    `seconds` of the load (install it with `.venv/bin/pip install py-spy`)."""
    if not PY_SPY.exists():
        print("    (no .venv/bin/py-spy; `.venv/bin/pip install py-spy` to profile)")
        return []
    procs = []
    for name in ("gunicorn", "qcluster"):
        out = ctx["out_dir"] / f"{label}.{name}.profile.txt"
        argv = [PY_SPY, "record", "--subprocesses", "--nonblocking", "--rate", 100]
        argv += ["--duration", seconds, "--format", "raw", "-o", out, "-p", ctx["watch"][name]]
        procs.append(start(f"py-spy-{name}", argv, dict(os.environ), ctx["out_dir"]))
        ctx["profiles"].append((label, name, out))
    return procs


KANRI_DIRS = ("integrations/", "automations/", "config/")
# Library functions worth seeing by name: where a request or a task spends its time.
LIB_FUNCS = (
    "is_usable",  # CONN_HEALTH_CHECKS' SELECT 1 before each request's first query
    "BaseDatabaseWrapper.commit",
    "Redis.enqueue",
    "Redis.dequeue",
    "SignedPackage.",
    "worker (django_q",
    "pusher (django_q",
    "monitor (django_q",
    "Event.process",
    "Event.customer",
    "_handle_crud_like_event",
    "get_default_api_key",
    "get_or_retrieve_for_api_key",
    "APIResource.refresh",  # the Stripe GETs
    "chat_postMessage",
)


def summarize_profile(path, top=24):
    """From py-spy's collapsed stacks: the share of samples in which each Kanri or key
    library function was on the stack (inclusive), and the hottest leaf functions."""
    inclusive, leaf, total = {}, {}, 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        frames = [frame_name(f) for f in stack.split(";")[1:]]  # [0] names the process
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + int(count)
        if frames:
            leaf[frames[-1]] = leaf.get(frames[-1], 0) + int(count)
    wanted = [
        (v, k)
        for k, v in inclusive.items()
        if k.split("(")[-1].startswith(KANRI_DIRS) or any(x in k for x in LIB_FUNCS)
    ]
    return total, sorted(wanted, reverse=True)[:top], sorted(map(swap, leaf.items()))[::-1][:10]


def swap(kv):
    return kv[1], kv[0]


def frame_name(frame):
    # "func (/abs/.venv/lib/python3.11/site-packages/pkg/mod.py:12)" -> "func (pkg/mod.py)"
    func, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0].split("site-packages/")[-1]
    return f"{func} ({where.replace(str(ROOT) + '/', '')})"


# ----------------------------------------------------------------------- configurations


def start_cluster(ctx):
    """(Re)start `manage.py qcluster` with the current configuration's environment."""
    ctx["cluster"] = start(
        "qcluster", [VENV_PY, "manage.py", "qcluster"], ctx["env"], ctx["out_dir"]
    )
    ctx["watch"]["qcluster"] = ctx["cluster"].pid
    return ctx["cluster"]


def crash_cluster(ctx):
    """SIGKILL the whole cluster mid-load (a host or OOM kill) and start a new one at once:
    whatever the old one had taken from Redis is gone with it."""
    old = ctx["cluster"]
    print(f"    SIGKILL qcluster (pid {old.pid}) and restarting it", flush=True)
    os.killpg(old.pid, signal.SIGKILL)
    stop(old, grace=5)
    start_cluster(ctx)


def wait_for_recovery(ctx, rows):
    """After a crash: wait for Kanri's sweepers (retry_due_runs every minute re-queues
    runs queued >2 min or running past their 5 min lease; retry_unprocessed_webhooks every
    5 min queues a sync batch) and count what reached Slack in the end."""
    ids = sorted({r["evt"] for r in rows if r["match"]})
    t0 = time.monotonic()
    print(f"    waiting up to {ctx['crash_wait']} s for the sweepers…", flush=True)
    with db_connect(ctx["db_name"]) as conn:
        while time.monotonic() - t0 < ctx["crash_wait"]:
            pending = conn.execute(
                "SELECT count(*) FROM automations_run WHERE trigger_key = ANY(%s)"
                " AND status NOT IN ('succeeded', 'failed', 'cancelled')",
                [ids],
            ).fetchone()[0]
            if not pending:
                break
            time.sleep(5)
        status = dict(
            conn.execute(
                "SELECT status, count(*) FROM automations_run WHERE trigger_key = ANY(%s)"
                " GROUP BY status",
                [ids],
            ).fetchall()
        )
    posts = {}
    for rec in http_json(ctx["sink"] + "/_records"):
        for x in set(rec["evt_ids"]).intersection(ids):
            posts[x] = posts.get(x, 0) + 1
    return {
        "waited_s": round(time.monotonic() - t0),
        "run_status": status,
        "posted": len(posts),
        "never_posted": len(ids) - len(posts),
        "duplicate_posts": sum(n - 1 for n in posts.values()),
    }


def run_config(cfg, loads, ctx):
    """Start gunicorn + qcluster in this configuration, run the loads, stop both."""
    import redis

    redis.from_url(REDIS_URL).flushdb()  # db 14 is ours: no tasks left from an earlier run
    ctx["env"] = kanri_env(
        ctx["db_name"],
        stripe_host=ctx["stripe_host"],
        sink_port=ctx["sink_port"],
        queue_workers=cfg["q"],
    )
    port = free_port()
    argv = [GUNICORN, "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", cfg["g"]]
    # gunicorn 27 otherwise opens ~/.gunicorn/gunicorn.ctl, shared with any other gunicorn.
    argv += ["--worker-class", "sync", "--timeout", 30, "--no-control-socket"]
    gunicorn = start("gunicorn", argv, ctx["env"], ctx["out_dir"])
    start_cluster(ctx)
    results = []
    try:
        wait_port(port, gunicorn)
        ctx["url"] = f"http://127.0.0.1:{port}{ctx['path']}"
        ctx["watch"]["gunicorn"] = gunicorn.pid
        smoke_test(ctx)
        for load in loads:
            load = {**load, "label": f"{cfg['name']}-{load['label']}"}
            results.append({"config": cfg["name"], **run_load(load, ctx)})
            time.sleep(2)  # a breath between loads (checkpoint, autovacuum)
    finally:
        stop(ctx["cluster"], grace=30)
        stop(gunicorn)
    return results


def smoke_test(ctx, timeout=90):
    """One matching event through the whole path before measuring: proves the cluster is
    up (it has no port to wait on) and the wiring (secret, sink, fake Stripe) is right."""
    evt_id, body, _ = loadgen.make_events(1, 1.0, 12345, f"S{int(time.time())}")[0]
    if ctx["stripe_url"]:
        pi, cus = seed_stripe_objects(ctx["stripe_url"], f"{ctx['run_id']}s", 1)[0].split()
        event = json.loads(body)
        event["data"]["object"].update(id=pi, customer=cus)
        body = json.dumps(event).encode()
    http_json(ctx["sink"] + "/_reset", {})
    signature = loadgen.stripe_signature(WEBHOOK_SECRET, body, int(time.time()))
    req = urllib.request.Request(
        ctx["url"],
        data=body,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 200:
            raise RuntimeError(f"smoke event answered {r.status}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ctx["cluster"].poll() is not None:
            raise RuntimeError(f"qcluster exited with {ctx['cluster'].returncode}")
        if any(evt_id in rec["evt_ids"] for rec in http_json(ctx["sink"] + "/_records")):
            return
        time.sleep(0.2)
    raise RuntimeError(f"smoke event {evt_id} did not reach the sink in {timeout} s")


# ----------------------------------------------------------------------- report


def fmt(x, nd=0):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def fmt_pair(p):
    return "/".join(fmt(x, 0) for x in p)


def one_line(r):
    s, d = r["summary"], r["db"]
    a, e = s["ack_ms"], s.get("e2e_ms", {})
    line = (
        f"acks {s['throughput_acks_per_s']}/s p50/p99 {a.get('p50')}/{a.get('p99')} ms"
        f" | runs {r['runs_per_s']}/s e2e p50/p99 {e.get('p50')}/{e.get('p99')} ms"
        f" | lost {s.get('lost')} dup {s.get('dup')} unexp {s.get('unexpected')}"
        f" | non-2xx {s['n_requests'] - s['ok']} | runs {d['runs']}/{d['matching_events']}"
        f" {d['run_status']} | syncs failed {d['triggers_failed']}"
        f" | settled in {r['settle']['waited_s']} s"
    )
    if "recovery" in r:
        line += f" | after sweepers: {r['recovery']}"
    return line


def print_table(rows):
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        cells = [
            str(c).ljust(w) if j < 2 else str(c).rjust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def cluster_tasks_per_s(r):
    """Tasks the cluster finished per second (a sync per delivery + a run per match),
    from the first send to the last task done."""
    d = r["db"]
    if not d["last_task_done"] or not r.get("first_send"):
        return None
    return (d["triggers_processed"] + d["runs"]) / max(1e-9, d["last_task_done"] - r["first_send"])


def report(results, meta):
    print()
    print("=" * 100)
    print(f"Kanri webhook end-to-end benchmark, {meta['started']}, {os.cpu_count()} CPUs")
    print(f"  code: {meta['git']}")
    print(f"  Stripe API: {meta['stripe_choice']}")
    print(f"  database {meta['db']} ({meta['db_note']}), broker {REDIS_URL}, sink {meta['sink']}")
    print(f"  raw results and logs: {meta['out_dir']}")
    print()
    header = "config load acks/s ack_p50 ack_p99 runs/s e2e_p50 e2e_p99 lost dup unexp non2xx"
    header += " runs=match succeeded sync_fail tasks/s"
    rows = [header.split()]
    for r in results:
        s, d = r["summary"], r["db"]
        a, e = s["ack_ms"], s.get("e2e_ms", {})
        ok = d["run_status"].get("succeeded", 0)
        rows.append(
            [
                r["config"],
                r["load"],
                fmt(s["throughput_acks_per_s"], 1),
                fmt(a.get("p50"), 1),
                fmt(a.get("p99"), 1),
                fmt(r["runs_per_s"], 1),
                fmt(e.get("p50"), 0),
                fmt(e.get("p99"), 0),
                fmt(s.get("lost")),
                fmt(s.get("dup")),
                fmt(s.get("unexpected")),
                fmt(s["n_requests"] - s["ok"]),
                f"{d['runs']}={d['matching_events']}"
                + ("" if d["runs"] == d["matching_events"] else " !"),
                f"{ok}" + ("" if ok == d["matching_events"] else " !"),
                fmt(d["triggers_failed"]),
                fmt(cluster_tasks_per_s(r), 0),
            ]
        )
    print_table(rows)
    print("  latencies in ms. runs/s: Slack posts for matching events / (last post - first send).")
    print("  runs=match: Run rows vs matching events; succeeded: runs in status succeeded;")
    print("  tasks/s: syncs + runs the cluster finished / (last one done - first send).")

    print()
    print("Ratios against the reference figures (/work/shared/bench/README.md):")
    closed = [r for r in results if "closed" in r["load"]]
    if closed:
        best_ack = max(closed, key=lambda r: r["summary"]["throughput_acks_per_s"])
        best_e2e = max(closed, key=lambda r: r["runs_per_s"] or 0)
        best_q = max(closed, key=lambda r: cluster_tasks_per_s(r) or 0)
        ack = best_ack["summary"]["throughput_acks_per_s"]
        e2e, tasks = best_e2e["runs_per_s"] or 0, cluster_tasks_per_s(best_q) or 0
        lo, hi = REF_BARE_DJANGO
        print(
            f"  acks:       {ack:6.1f}/s  = x{ack / REF_DJSTRIPE_INGEST:.2f} dj-stripe stock view"
            f" (84/s), x{ack / hi:.2f}-{ack / lo:.2f} bare Django view (720-930/s)"
            f"   [{best_ack['label']}]"
        )
        print(
            f"  end to end: {e2e:6.1f} runs/s = x{e2e / hi:.3f}-{e2e / lo:.3f} bare Django view"
            f" (720-930/s)   [{best_e2e['label']}]"
        )
        print(
            f"  cluster:    {tasks:6.1f} tasks/s = x{tasks / REF_DJANGO_Q[1]:.2f}-"
            f"{tasks / REF_DJANGO_Q[0]:.2f} django-q2 default (70-90 tasks/s)   [{best_q['label']}]"
        )

    print()
    print("Database checks per load:")
    for r in results:
        d, st = r["db"], r["settle"]
        verdict = (
            "OK"
            if d["runs"] == d["matching_events"] == d["run_status"].get("succeeded", 0)
            and not d["runs_for_non_matching"]
            else "MISMATCH"
        )
        print(
            f"  {r['label']}: {verdict}: {d['runs']} runs for {d['matching_events']} matching"
            f" events, {d['runs_for_non_matching']} for non-matching; status {d['run_status']};"
            f" taken more than once {d['runs_retaken']}; steps {d['step_status']}"
        )
        print(
            f"      {d['deliveries']} deliveries -> {d['triggers']} trigger rows,"
            f" {d['triggers_processed']} synced, {d['triggers_failed']} failed"
            f" {d['trigger_exceptions'] or ''}; dj-stripe Event rows {d['stripe_events']}/"
            f"{d['distinct_events']}; run queue wait p50/p99 {fmt_pair(d['queue_wait_ms'])} ms,"
            f" execution p50/p99 {fmt_pair(d['execution_ms'])} ms; settled {st['waited_s']} s"
            f" after loadgen, left {st['pending_triggers']} syncs + {st['pending_runs']} runs"
            f" pending, Redis queue {st['redis_queue']}"
        )
        if "recovery" in r:
            print(f"      after the crash and sweepers: {r['recovery']}")

    print()
    print("CPU: % of one core from first send to last ack (the machine has 200%; 'machine'")
    print("includes loadgen and anything else running), then CPU ms per delivery over the")
    print("whole load (sending and settling; PostgreSQL counts every database):")
    for r in results:
        if not r["cpu_ms_per_delivery"]:
            print(f"  {r['label']}: n/a (the cluster was restarted mid-load)")
            continue
        sending = ", ".join(f"{k} {v}" for k, v in r.get("cpu_pct_sending", {}).items())
        per = ", ".join(f"{k} {v}" for k, v in r["cpu_ms_per_delivery"].items())
        print(f"  {r['label']}: sending: {sending}; whole load: machine {r['machine_busy_pct']}%")
        print(f"      ms/delivery: {per}")

    calls = [(r["label"], r["stripe_calls"]) for r in results if "stripe_calls" in r]
    if calls:
        print()
        print("Stripe API calls made by the syncs (fake Stripe's log):")
        for label, c in calls:
            print(f"  {label}: {c}")

    for label, name, path in meta["profiles"]:
        if not path.exists():
            continue
        total, inclusive, leaves = summarize_profile(path)
        if not total:
            continue
        print()
        print(f"py-spy, {name} during {label}: {total} samples of busy threads (time waiting")
        print("for PostgreSQL counts as busy); share of samples with the function on the stack:")
        for v, k in inclusive:
            print(f"  {100 * v / total:5.1f}%  {k}")
        print("  hottest leaf functions:")
        for v, k in leaves:
            print(f"  {100 * v / total:5.1f}%  {k}")

    print()
    print("Errors in the logs during each load (gunicorn, qcluster, PostgreSQL for this DB):")
    any_err = False
    for r in results:
        for name, found in r["log_errors"].items():
            for line, count in sorted(found.items(), key=lambda kv: -kv[1])[:6]:
                any_err = True
                print(f"  {r['label']} {name}: {count} x {line}")
    if not any_err:
        print("  none")
    print()
    print(f"Total wall time {meta['elapsed']:.0f} s")


def git_state():
    """Which code was measured: the tree may hold someone's uncommitted work."""
    try:
        head = subprocess.run(
            ["git", "log", "-1", "--format=%h %s"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":!benchmarks"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except OSError:
        return "unknown (no git)"
    return head[:70] + (f" + {len(dirty)} uncommitted paths" if dirty else " (clean)")


# ----------------------------------------------------------------------- main


def loads_for(args, last_config):
    if args.stripe == "closed":
        # Every sync holds a worker through the SDK's retries (~1.5 s): keep the load light.
        return [{"label": "r20-m03-outage", "rate": 20, "duration": 10, "match": 0.3}]
    if args.quick:
        loads = [
            {"label": "c16-m1", "concurrency": 16, "n": 600, "match": 1.0, "warmup": 30},
            {"label": "r100-m03-resend", "rate": 100, "duration": 5, "match": 0.3, "resend": 0.1},
        ]
    else:
        loads = [
            {"label": "c16-m1", "concurrency": 16, "n": 3000, "match": 1.0, "warmup": 50},
            {"label": "c16-m03", "concurrency": 16, "n": 3000, "match": 0.3},
            {"label": "r100-m1", "rate": 100, "duration": 20, "match": 1.0},
            {"label": "r100-m03-resend", "rate": 100, "duration": 20, "match": 0.3, "resend": 0.1},
            {"label": "r300-m03", "rate": 300, "duration": 20, "match": 0.3},
        ]
    if args.profile:
        # Its own load: py-spy costs CPU on a 2-core machine, so it must not skew the others.
        loads.append(
            {"label": "c16-m1-profiled", "concurrency": 16, "n": 1500, "match": 1.0}
            | {"profile": True}
        )
    if last_config and args.stripe == "fake" and not args.quick:
        # A low rate, but each sync waits on "Stripe" like it would in production.
        loads.append(
            {"label": "r30-m03-stripe150", "rate": 30, "duration": 20, "match": 0.3}
            | {"stripe_ms": 150}
        )
    if last_config and args.crash_test:
        loads.append(
            {"label": "r50-m1-crash", "rate": 50, "duration": 20, "match": 1.0, "crash_at": 8}
        )
    return loads


def configs_for(args):
    default = "g3q2" if args.quick else "g3q2,g3q4,g5q4"
    out = []
    for name in (args.configs or default).split(","):
        g, q = name.strip().lstrip("g").split("q")
        out.append({"name": name.strip(), "g": int(g), "q": int(q)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="kanri_bench", help="PostgreSQL database to (re)create")
    ap.add_argument("--reuse-db", action="store_true", help="keep an existing database")
    ap.add_argument("--configs", help="comma list of gGqQ: gunicorn workers G, QUEUE_WORKERS Q")
    ap.add_argument("--quick", action="store_true", help="one config (g3q2), two small loads")
    ap.add_argument(
        "--stripe",
        choices=["fake", "closed"],
        default="fake",
        help="fake: the project's fake Stripe with seeded objects (default); closed: a closed"
        " port, so every sync fails (a Stripe outage)",
    )
    ap.add_argument(
        "--crash-test",
        action="store_true",
        help="extra load: SIGKILL qcluster mid-load and restart it",
    )
    ap.add_argument(
        "--crash-wait",
        type=int,
        default=0,
        help="after the crash load, wait up to this many seconds for Kanri's sweepers"
        " (they act after 5-10 min; 900 is enough)",
    )
    ap.add_argument(
        "--profile", action="store_true", help="extra closed-loop load per config under py-spy"
    )
    ap.add_argument("--drain-timeout", type=int, default=300, help="max wait per load (s)")
    ap.add_argument("--out-dir", type=Path, help="default: benchmarks/results/<timestamp>")
    ap.add_argument("--serve-fake-stripe", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.serve_fake_stripe:
        return serve_fake_stripe(args.serve_fake_stripe)

    t_begin = time.monotonic()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    # Under benchmarks/ (git-ignored there): this script writes nowhere else in the tree.
    out_dir = args.out_dir or HERE / "results" / time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")  # so that `finally` stops the children

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        sink_port = free_port()
        sink = start(
            "sink", [sys.executable, HARNESS / "sink.py", "--port", sink_port], None, out_dir
        )
        wait_port(sink_port, sink)
        fake = None
        if args.stripe == "fake":
            stripe_port = free_port()
            argv = [VENV_PY, Path(__file__).resolve(), "--serve-fake-stripe", stripe_port]
            fake = start("fake-stripe", argv, None, out_dir)
            wait_port(stripe_port, fake)
            stripe_host = f"http://127.0.0.1:{stripe_port}"
            stripe_choice = (
                f"the project's fake (tests.fakes.stripe_api) at {stripe_host}. Each event's"
                " payment intent and customer are seeded in it, so dj-stripe's re-fetch in"
                " process_webhook succeeds as against real Stripe; a closed port would make"
                " every sync fail (an outage, not normal operation)."
                " Its answers take ~1 ms, except where a load says 'Stripe +N ms'."
            )
        else:
            stripe_host = "http://127.0.0.1:9"  # discard port: connections refused at once
            stripe_choice = (
                "closed loopback port 127.0.0.1:9: every dj-stripe re-fetch fails after the"
                " SDK's 2 retries, i.e. Kanri during a Stripe outage"
            )

        env = kanri_env(args.db, stripe_host=stripe_host, sink_port=sink_port)
        print(f"Preparing database {args.db}…", flush=True)
        prepare_database(args.db, args.reuse_db, env)
        setup = create_rows(env)
        print(f"  workflow {setup['workflow']} active; webhook {setup['path']}", flush=True)

        ctx = {
            "db_name": args.db,
            "out_dir": out_dir,
            "path": setup["path"],
            "sink": f"http://127.0.0.1:{sink_port}",
            "sink_port": sink_port,
            "stripe_host": stripe_host,
            "stripe_url": stripe_host if fake else None,
            "drain_timeout": args.drain_timeout,
            "crash_wait": args.crash_wait,
            "seed": 1,
            "run_id": time.strftime("%H%M%S"),
            "profile": args.profile,
            "profiles": [],
            "watch": {
                "postgres": find_pid("postgres"),
                "redis": find_pid("redis-server"),
                "fake-stripe": fake.pid if fake else None,
                "sink": sink.pid,
            },
        }
        # Someone may be committing while this runs: gunicorn and qcluster load the code at
        # each configuration's start, so note what was there at the start and at the end.
        code_at_start = git_state()
        results = []
        configs = configs_for(args)
        for i, cfg in enumerate(configs):
            print(
                f"Configuration {cfg['name']}: gunicorn -w {cfg['g']}, QUEUE_WORKERS={cfg['q']}",
                flush=True,
            )
            results += run_config(cfg, loads_for(args, i == len(configs) - 1), ctx)
            (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
        report(
            results,
            {
                "started": started,
                "stripe_choice": stripe_choice,
                "sink": ctx["sink"],
                "db": args.db,
                "db_note": "reused" if args.reuse_db else "created and migrated",
                "out_dir": out_dir,
                "elapsed": time.monotonic() - t_begin,
                "profiles": ctx["profiles"],
                "git": code_at_start
                if git_state() == code_at_start
                else f"{code_at_start}; CHANGED during the run, now {git_state()}",
            },
        )
    finally:
        stop_all()


if __name__ == "__main__":
    main()
