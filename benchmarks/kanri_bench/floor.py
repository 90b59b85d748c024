"""The floor (the harness's floor/): one Django view that verifies, inserts once and posts
to the sink in the request. Same PostgreSQL server, same loads, same sitting as Kanri."""

import os
import subprocess

from kanri_bench.kanri import PG_HOST, VENV_BIN, create_database
from kanri_bench.procs import find_pid, start, stop, wait_port


class Floor:
    name = "floor"

    def __init__(self, ctx, g=3):
        self.ctx, self.g = ctx, g
        self.db_name = ctx["floor_db"]
        self.dir = ctx["harness"].floor_dir
        self.env = dict(
            os.environ,
            FLOOR_DB="postgres",
            FLOOR_PG_NAME=self.db_name,
            SINK_URL=f"{ctx['sink']}/api/chat.postMessage",
            PYTHONDONTWRITEBYTECODE="1",  # the harness directory may be read-only
            PYTHONUNBUFFERED="1",
        )
        self.logs = ("floor-gunicorn",)
        self.watch = {"postgres": find_pid("postgres")}
        self.stripe_url = None

    def prepare(self):
        create_database(self.db_name, reuse=True)
        subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", "migrate", "-v0"],
            cwd=self.dir,
            env=self.env,
            check=True,
            timeout=300,
        )
        self.truncate()

    def truncate(self):
        import psycopg

        with psycopg.connect(f"{PG_HOST}/{self.db_name}", autocommit=True) as conn:
            conn.execute("TRUNCATE stripe_event")

    def __enter__(self):
        self.prepare()
        port = self.ctx["free_port"]()
        argv = [VENV_BIN / "gunicorn", "floorproj.wsgi:application", "-b", f"127.0.0.1:{port}"]
        argv += ["-w", self.g, "--worker-class", "sync", "--backlog", 2048]
        argv += ["--no-control-socket"]
        self.gunicorn = start("floor-gunicorn", argv, self.env, self.ctx["out_dir"], cwd=self.dir)
        wait_port(port, self.gunicorn)
        self.url = f"http://127.0.0.1:{port}/stripe/webhook-e2e"
        self.watch["gunicorn"] = self.gunicorn.pid
        return self

    def __exit__(self, *exc):
        stop(self.gunicorn)

    def before_load(self):
        pass

    def settle(self, since_epoch, drain_timeout):
        return {"waited_s": 0.0, "pending_triggers": 0, "pending_runs": 0, "redis_queue": 0}

    def check(self, rows, since_epoch):
        import psycopg

        ids = sorted({r["evt"] for r in rows})
        with psycopg.connect(f"{PG_HOST}/{self.db_name}", autocommit=True) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM stripe_event WHERE event_id = ANY(%s)", [ids]
            ).fetchone()[0]
        return {"deliveries": len(rows), "distinct_events": len(ids), "stored_events": stored}

    def verdict(self, d):
        return d["stored_events"] == d["distinct_events"]
