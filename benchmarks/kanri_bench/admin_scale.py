"""The admin at scale: N runs loaded into PostgreSQL, then the run list, its filters, page
1000 and the inventory timed through Django's test client (a Django program).

    python -m kanri_bench.admin_scale --runs 1000000 [--db kanri_bench] [--reload]

The runs are inserted by one INSERT … SELECT over generate_series per 100,000 (no Python
per row): 20 paused workflows on catalog event types, created over the last 89 days,
mostly succeeded, each with its own real ~2.3 KB payment_intent event, stored apart as a
delivery stores it (a list page that loaded the JSON would show it). Loading is skipped
when the database already holds N loaded runs. After loading: VACUUM ANALYZE, as
autovacuum would in time.

Each page is fetched once to warm up, then --repeat times; the report gives the median
and the worst time and the number of SQL queries (the same for every page is the goal).
"""

import argparse
import json
import os
import statistics
import sys
import time

from kanri_bench import kanri
from kanri_bench.harness import DEFAULT, Harness

WORKFLOWS = 20
PREFIX = "evt_scale_"
CHUNK = 100_000
TARGET_MS = {"list": 300, "inventory": 500}


def make_workflows():
    from automations import catalog, workflows
    from automations.models import Workflow

    existing = list(Workflow.objects.filter(name__startswith="Scale "))
    if len(existing) >= WORKFLOWS:
        return existing[:WORKFLOWS]
    types = [t for t, info in catalog.EVENT_TYPES.items() if info["object"] == "payment_intent"]
    types += [t for t in catalog.EVENT_TYPES if t not in types]
    made = []
    for i in range(WORKFLOWS):
        workflow = workflows.create(
            {
                "name": f"Scale {i:02d}",
                "trigger": {"kind": "stripe_event", "event_type": types[i % len(types)]},
                "conditions": [],
                "steps": [
                    {
                        "name": "notify",
                        "kind": "slack.post_message",
                        "config": {"channel": "C0SCALE", "text": "Run {{trigger.id}}"},
                    }
                ],
            }
        )
        workflows.activate(workflow)
        # Paused: the loaded runs are history; no live event may start one of these.
        workflow.refresh_from_db()
        workflow.status = Workflow.Status.PAUSED
        workflow.save()
        made.append(workflow)
    return made


# Each run's event stored once in automations_triggerevent and referenced, as a
# delivery stores it (automations.triggers.store_event); trigger_data stays NULL.
LOAD_SQL = """
WITH events AS (
    INSERT INTO automations_triggerevent (key, data, created_at)
    SELECT %(prefix)s || g, jsonb_set(%(event)s::jsonb, '{id}', to_jsonb(%(prefix)s || g)),
           now() - interval '89 days' * (1 - g::float / %(total)s)
    FROM generate_series(%(first)s, %(last)s) AS g
    RETURNING id, key, created_at
)
INSERT INTO automations_run (workflow_id, version_id, trigger_kind, trigger_key, event_type,
    event_id, status, hold_reason, attempt, interruptions, error, created_at, started_at,
    finished_at)
SELECT w.workflow_id, w.version_id, 'stripe_event', e.key, w.event_type, e.id,
    s.status, CASE WHEN s.status = 'held' THEN 'outcome_unknown' ELSE '' END, 1, 0,
    CASE WHEN s.status = 'failed' THEN 'Step ''notify'' failed: Slack answered 500' ELSE '' END,
    e.created_at, e.created_at + interval '40 ms', CASE WHEN s.status = 'held' THEN NULL
                                        ELSE e.created_at + interval '250 ms' END
FROM events AS e
CROSS JOIN LATERAL (SELECT substr(e.key, %(digits_from)s)::bigint AS g) AS n
CROSS JOIN LATERAL (
    SELECT (%(workflows)s::bigint[])[1 + n.g %% %(n)s] AS workflow_id,
           (%(versions)s::bigint[])[1 + n.g %% %(n)s] AS version_id,
           (%(types)s::text[])[1 + n.g %% %(n)s] AS event_type) AS w
CROSS JOIN LATERAL (
    SELECT CASE WHEN n.g %% 100 < 93 THEN 'succeeded' WHEN n.g %% 100 < 98 THEN 'failed'
                WHEN n.g %% 100 < 99 THEN 'cancelled' ELSE 'held' END AS status) AS s
"""


def load(total, reload, harness):
    from django.db import connection

    from automations.models import Run

    workflows = make_workflows()
    loaded = Run.objects.filter(trigger_key__startswith=PREFIX)
    have = loaded.count()
    # Runs loaded by an earlier version of this program carry their event inline.
    if have == total and not reload and not loaded.filter(event__isnull=True).exists():
        print(f"  {have:,} loaded runs already there; not loading", flush=True)
        return workflows
    if have:
        print(f"  deleting {have:,} earlier loaded runs and their events…", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM automations_run WHERE trigger_key LIKE %s", [PREFIX + "%"])
        cursor.execute("DELETE FROM automations_triggerevent WHERE key LIKE %s", [PREFIX + "%"])
    _, body, _ = harness.loadgen.make_events(1, 1.0, 7, "scale")[0]
    params = {
        "prefix": PREFIX,
        "event": body.decode(),
        "workflows": [w.pk for w in workflows],
        "versions": [w.active_version_id for w in workflows],
        "types": [w.event_type for w in workflows],
        "n": len(workflows),
        "total": total,
        "digits_from": len(PREFIX) + 1,
    }
    t0 = time.monotonic()
    with connection.cursor() as cursor:
        for first in range(1, total + 1, CHUNK):
            last = min(total, first + CHUNK - 1)
            cursor.execute(LOAD_SQL, {**params, "first": first, "last": last})
            rate = last / (time.monotonic() - t0)
            print(f"  {last:,} runs inserted ({rate:,.0f}/s)", flush=True)
        print("  VACUUM ANALYZE automations_run, automations_triggerevent…", flush=True)
        cursor.execute("VACUUM ANALYZE automations_run")
        cursor.execute("VACUUM ANALYZE automations_triggerevent")
    print(f"  loaded in {time.monotonic() - t0:.0f} s", flush=True)
    return workflows


def measure(workflows, repeat):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    one = workflows[0]
    pages = [
        ("list", "run list", "/admin/automations/run/"),
        ("list", "status failed", "/admin/automations/run/?status__in=failed"),
        ("list", "status failed,held", "/admin/automations/run/?status__in=failed,held"),
        ("list", "event type", f"/admin/automations/run/?event_type={one.event_type}"),
        ("list", "workflow", f"/admin/automations/run/?workflow__id__exact={one.pk}"),
        ("list", "created: past 7 days", _past_week()),
        (
            "list",
            "held: outcome unknown",
            "/admin/automations/run/?hold_reason__exact=outcome_unknown",
        ),
        ("list", "manual runs (none)", "/admin/automations/run/?trigger_kind__exact=manual"),
        ("list", "page 1000", "/admin/automations/run/?p=1000"),
        ("list", "status failed, page 100", "/admin/automations/run/?status__in=failed&p=100"),
        ("inventory", "inventory", "/admin/automations/workflow/inventory/"),
    ]
    rows = []
    for kind, name, url in pages:
        response = client.get(url, secure=True)  # warm-up, and a check that it renders
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        times, queries = [], None
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                t0 = time.perf_counter()
                client.get(url, secure=True)
                times.append(1000 * (time.perf_counter() - t0))
            queries = len(captured.captured_queries)
            loads_json = any(
                "trigger_data" in q["sql"] or '"automations_triggerevent"."data"' in q["sql"]
                for q in captured.captured_queries
            )
        rows.append(
            {
                "page": name,
                "url": url,
                "median_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
                "queries": queries,
                "loads_trigger_data": loads_json,
                "target_ms": TARGET_MS[kind],
            }
        )
        print(f"  {name}: {rows[-1]['median_ms']} ms, {queries} queries", flush=True)
    return rows


def _past_week():
    from datetime import timedelta

    from django.utils import timezone

    today = timezone.localdate()
    since = today - timedelta(days=7)
    return (
        "/admin/automations/run/?created_at__gte="
        f"{since.isoformat()}+00%3A00%3A00%2B00%3A00&created_at__lt="
        f"{(today + timedelta(days=1)).isoformat()}+00%3A00%3A00%2B00%3A00"
    )


def print_report(rows, total):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('automations_run'))")
        size = cursor.fetchone()[0]
    print()
    print(f"The admin at {total:,} runs (automations_run: {size}, Django test client, DEBUG off):")
    print()
    print("| page | median ms | worst ms | target | queries | event JSON loaded |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        verdict = "ok" if r["median_ms"] < r["target_ms"] else "OVER"
        print(
            f"| {r['page']} | {r['median_ms']} | {r['max_ms']} | < {r['target_ms']} ms {verdict}"
            f" | {r['queries']} | {'yes' if r['loads_trigger_data'] else 'no'} |"
        )


def run_phase(db_name, total, out_dir, repeat=5, redis_url="redis://127.0.0.1:6379/13"):
    """From the benchmark's CLI: the same program in a child with Kanri's environment."""
    import subprocess

    env = kanri.env_for(db_name, redis_url, stripe_host="http://127.0.0.1:9", sink_port=9)
    argv = [str(kanri.VENV_BIN / "python"), "-m", "kanri_bench.admin_scale", "--runs", str(total)]
    argv += ["--db", db_name, "--repeat", str(repeat), "--out", str(out_dir / "admin.json")]
    argv += ["--redis-url", redis_url, "--no-migrate"]  # the benchmark has migrated it
    subprocess.run(argv, cwd=kanri.ROOT, env=env, check=True, timeout=3600)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="kanri_bench.admin_scale", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--db", default="kanri_bench", help="Kanri's PostgreSQL database")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    ap.add_argument("--harness", default=str(DEFAULT))
    ap.add_argument("--reload", action="store_true", help="delete and load the runs again")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-migrate", action="store_true", help="the database is migrated")
    ap.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    harness = Harness(args.harness)
    env = kanri.env_for(args.db, args.redis_url, stripe_host="http://127.0.0.1:9", sink_port=9)
    os.environ.update(env)
    sys.path[:0] = env["PYTHONPATH"].split(os.pathsep)
    print(f"Admin at scale: database {args.db}", flush=True)
    if not args.no_migrate:
        kanri.prepare_database(args.db, True, env)

    import django

    django.setup()
    workflows = load(args.runs, args.reload, harness)
    rows = measure(workflows, args.repeat)
    print_report(rows, args.runs)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"runs": args.runs, "pages": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
