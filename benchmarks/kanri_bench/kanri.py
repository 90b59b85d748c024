"""Kanri in its production shape: PostgreSQL, the Redis broker, gunicorn and qcluster.

DEBUG is off and every setting comes from the environment (ENV_FILE= so no .env is read).
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kanri_bench import fake_stripe
from kanri_bench.harness import ROOT
from kanri_bench.procs import find_pid, http_json, start, stop, wait_port

VENV_BIN = Path(sys.executable).parent  # the benchmark runs on Kanri's own virtualenv
PG_HOST = "postgresql://postgres@127.0.0.1:5432"
STRIPE_KEY = "sk_test_" + "0" * 24
QUEUE_NAME = "kanri"
QUEUE_KEY = f"django_q:{QUEUE_NAME}:q"  # django-q2's Redis list for that queue name


def python_path():
    return os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")])


def env_for(db_name, redis_url, *, stripe_host, sink_port, queue_workers=4):
    """What Kanri's processes get: every setting from variables, no .env file."""
    env = dict(os.environ)
    env.update(
        {
            "ENV_FILE": "",
            "DEBUG": "off",
            "SECRET_KEY": "kanri-bench-" + "x" * 40,  # web and cluster must share it
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_API_HOST": stripe_host,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
            "CONN_MAX_AGE": "60",
            "REDIS_URL": redis_url,
            "QUEUE_NAME": QUEUE_NAME,
            "QUEUE_WORKERS": str(queue_workers),
            "SLACK_API_URL": f"http://127.0.0.1:{sink_port}/api/",
            "SLACK_BOT_TOKEN": "xoxb-bench-token",
            "EMAIL_URL": "consolemail://",
            "LOG_LEVEL": "INFO",
            "QUEUE_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": python_path(),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    return env


def manage(env, *args, timeout=600, capture=False, check=True):
    return subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=check,
        timeout=timeout,
        text=True,
        capture_output=capture,
    )


def db_connect(db_name):
    import psycopg

    return psycopg.connect(f"{PG_HOST}/{db_name}", autocommit=True)


def create_database(db_name, reuse):
    """Create the database (dropped first unless reuse); return whether it existed."""
    import psycopg

    with psycopg.connect(f"{PG_HOST}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
        if exists and not reuse:
            # FORCE: an interrupted earlier run may have left connections behind.
            conn.execute(f'DROP DATABASE "{db_name}" WITH (FORCE)')
        if not exists or not reuse:
            conn.execute(f'CREATE DATABASE "{db_name}"')
    return bool(exists and reuse)


def prepare_database(db_name, reuse, env):
    create_database(db_name, reuse)
    # `migrate --check` exits non-zero while something is unapplied (a reused database may
    # predate a migration someone added since).
    if manage(env, "migrate", "--check", capture=True, check=False).returncode == 0:
        print(f"  {db_name} already migrated; reused", flush=True)
        return
    print(f"  migrating {db_name} (dj-stripe's migrations take ~50 s)…", flush=True)
    t0 = time.monotonic()
    manage(env, "migrate", "--noinput", "-v", "0", timeout=900)
    print(f"  migrated in {time.monotonic() - t0:.0f} s", flush=True)


def create_rows(env):
    out = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "kanri_bench.setup_kanri"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        text=True,
        capture_output=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH-SETUP "))
    return json.loads(line.split(" ", 1)[1])


def start_fake_stripe(out_dir, port):
    env = dict(os.environ, PYTHONPATH=python_path(), PYTHONUNBUFFERED="1")
    argv = [VENV_BIN / "python", "-m", "kanri_bench.fake_stripe", port]
    proc = start("fake-stripe", argv, env, out_dir, cwd=ROOT)
    wait_port(port, proc)
    return proc


def cluster_name(i):
    """qcluster, qcluster2, …: the names of the processes, their logs and their figures."""
    return "qcluster" if i == 0 else f"qcluster{i + 1}"


class Kanri:
    """One configuration gGqQ of Kanri: gunicorn -w G and `clusters` qcluster processes
    with QUEUE_WORKERS=Q each, as on that many hosts sharing one Redis and PostgreSQL."""

    name = "kanri"

    def __init__(self, ctx, g, q, clusters=1):
        self.ctx, self.g, self.q = ctx, g, q
        self.cluster_names = [cluster_name(i) for i in range(clusters)]
        self.clusters = {}
        self.db_name = ctx["db_name"]
        self.env = env_for(
            ctx["db_name"],
            ctx["redis_url"],
            stripe_host=ctx["stripe_host"],
            sink_port=ctx["sink_port"],
            queue_workers=q,
        )
        self.logs = ("gunicorn", *self.cluster_names)
        self.watch = {"postgres": find_pid("postgres"), "redis": find_pid("redis-server")}
        self.stripe_url = ctx["stripe_url"]

    def __enter__(self):
        import redis

        redis.from_url(self.ctx["redis_url"]).flushdb()  # our db: no tasks from an earlier run
        port = self.ctx["free_port"]()
        argv = [VENV_BIN / "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", self.g]
        # gunicorn otherwise opens ~/.gunicorn/gunicorn.ctl, shared with any other gunicorn.
        argv += ["--worker-class", "sync", "--timeout", 30, "--no-control-socket"]
        argv += ["--backlog", 2048, *self.ctx.get("gunicorn_args", ())]
        out_dir = self.ctx["out_dir"]
        self.gunicorn = start("gunicorn", argv, self.env, out_dir, cwd=ROOT)
        for name in self.cluster_names:
            self.start_cluster(name)
        wait_port(port, self.gunicorn)
        self.url = f"http://127.0.0.1:{port}{self.ctx['path']}"
        self.watch["gunicorn"] = self.gunicorn.pid
        self.smoke_test()
        return self

    def __exit__(self, *exc):
        for cluster in self.clusters.values():
            stop(cluster, grace=30)
        stop(self.gunicorn)

    def start_cluster(self, name):
        argv = [VENV_BIN / "python", "manage.py", "qcluster"]
        self.clusters[name] = start(name, argv, self.env, self.ctx["out_dir"], cwd=ROOT)
        self.watch[name] = self.clusters[name].pid

    def crash_cluster(self):
        """SIGKILL the (first) cluster mid-load (a host or OOM kill) and start a new one at
        once: whatever the old one had taken from Redis is gone with it."""
        name = self.cluster_names[0]
        old = self.clusters[name]
        print(f"    SIGKILL {name} (pid {old.pid}) and restarting it", flush=True)
        os.killpg(old.pid, signal.SIGKILL)
        stop(old, grace=5)
        self.start_cluster(name)

    def smoke_test(self, timeout=90):
        """One matching event through the whole path before measuring: proves the cluster
        is up (it has no port to wait on) and the wiring (secret, sink, Stripe) is right."""
        loadgen = self.ctx["harness"].loadgen
        evt_id, body, _ = loadgen.make_events(1, 1.0, 12345, f"S{int(time.time())}")[0]
        if self.stripe_url:
            pi, cus = fake_stripe.seed_objects(self.stripe_url, f"{self.ctx['run_id']}s", 1)[
                0
            ].split()
            event = json.loads(body)
            event["data"]["object"].update(id=pi, customer=cus)
            body = json.dumps(event).encode()
        http_json(self.ctx["sink"] + "/_reset", {})
        req = urllib.request.Request(
            self.url,
            data=body,
            headers={
                "Stripe-Signature": self.ctx["harness"].signed(body, int(time.time())),
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            if r.status != 200:
                raise RuntimeError(f"smoke event answered {r.status}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, cluster in self.clusters.items():
                if cluster.poll() is not None:
                    raise RuntimeError(f"{name} exited with {cluster.returncode}")
            if any(evt_id in rec["evt_ids"] for rec in http_json(self.ctx["sink"] + "/_records")):
                return
            time.sleep(0.2)
        raise RuntimeError(f"smoke event {evt_id} did not reach the sink in {timeout} s")

    def redis_queue_len(self):
        import redis

        return redis.from_url(self.ctx["redis_url"]).llen(QUEUE_KEY)

    def settle(self, since_epoch, drain_timeout):
        """Wait (bounded) until every webhook of this load is synced or has failed and no
        run is queued or running; return the seconds waited and what was still pending."""
        t0 = time.monotonic()
        last, last_change = None, time.monotonic()
        with db_connect(self.db_name) as conn:
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
                # Stuck (nothing moved for 30 s: e.g. tasks lost with a killed worker) or
                # out of time: report what is left rather than wait for the sweepers.
                if now - last_change > 30 or now - t0 > drain_timeout:
                    break
                time.sleep(0.5)
        return {
            "waited_s": round(time.monotonic() - t0, 1),
            "pending_triggers": last[0],
            "pending_runs": last[1],
            "redis_queue": self.redis_queue_len(),
        }

    def check(self, rows, since_epoch):
        """What Kanri recorded for this load: a run per matching event, its status and
        steps, the webhook rows and the mirror's sync, and the audit's size per run."""
        pct = self.ctx["harness"].percentile
        ids = sorted({r["evt"] for r in rows})
        matching = {r["evt"] for r in rows if r["match"]}
        with db_connect(self.db_name) as conn:
            runs = conn.execute(
                "SELECT trigger_key, status, attempt, created_at, started_at, finished_at,"
                " pg_column_size(r.*)"
                " FROM automations_run r WHERE trigger_key = ANY(%s)",
                [ids],
            ).fetchall()
            steps = conn.execute(
                "SELECT s.status, count(*), sum(pg_column_size(s.*))"
                " FROM automations_runstep s"
                " JOIN automations_run r ON r.id = s.run_id WHERE r.trigger_key = ANY(%s)"
                " GROUP BY s.status",
                [ids],
            ).fetchall()
            # The event id is only in the body until the sync sets event_id: parse the body.
            triggers = conn.execute(
                "SELECT (body::jsonb)->>'id', processed, exception, extract(epoch FROM updated),"
                " extract(epoch FROM updated - created)"
                " FROM djstripe_webhookeventtrigger WHERE created >= to_timestamp(%s)",
                [since_epoch - 5],
            ).fetchall()
            events = conn.execute(
                "SELECT count(*) FROM djstripe_event WHERE id = ANY(%s)", [ids]
            ).fetchone()[0]
            audit_after = self.audit_bytes(conn)
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
        # Mirror lag: from the delivery's row to its sync (the sync stamps `updated`).
        lag = [float(t[4]) * 1000 for t in triggers if t[1]]
        done = [float(t[3]) for t in triggers if t[1]] + [r[5].timestamp() for r in runs if r[5]]
        row_bytes = sum(r[6] for r in runs) + sum(s[2] or 0 for s in steps)
        return {
            "matching_events": len(matching),
            "runs": len(runs),
            "runs_for_non_matching": sum(1 for r in runs if r[0] not in matching),
            "run_status": status,
            "runs_retaken": sum(1 for r in runs if r[2] > 1),
            "step_status": {s[0]: s[1] for s in steps},
            "deliveries": len(rows),
            "triggers": len(triggers),
            "triggers_processed": sum(1 for t in triggers if t[1]),
            "triggers_failed": sum(1 for t in triggers if t[2]),
            "trigger_exceptions": exceptions,
            "stripe_events": events,
            "distinct_events": len(ids),
            "queue_wait_ms": (pct(queue_wait, 50), pct(queue_wait, 99)),
            "mirror_lag_ms": (pct(lag, 50), pct(lag, 99)),
            "execution_ms": (pct(execution, 50), pct(execution, 99)),
            "last_task_done": max(done) if done else None,
            # Row bytes of this load's runs and steps, and the tables' size on disk per run.
            "audit_row_bytes_per_run": round(row_bytes / len(runs)) if runs else None,
            # What the tables grew by on disk during this load, per run it created, as left
            # after the load (no VACUUM FULL): heap + TOAST + indexes, dead rows included.
            "audit_disk_bytes_per_run": round((audit_after - self.audit_before) / len(runs))
            if runs
            else None,
        }

    def audit_bytes(self, conn=None):
        if conn is None:
            with db_connect(self.db_name) as conn:
                return self.audit_bytes(conn)
        return conn.execute(
            "SELECT pg_total_relation_size('automations_run')"
            " + pg_total_relation_size('automations_runstep')"
        ).fetchone()[0]

    def before_load(self):
        self.audit_before = self.audit_bytes()

    def verdict(self, d):
        return (
            d["runs"] == d["matching_events"] == d["run_status"].get("succeeded", 0)
            and not d["runs_for_non_matching"]
        )
