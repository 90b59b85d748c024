"""`python -m kanri_bench`: the floor, then Kanri, under the same loads; then the report.

Run from benchmarks/ with Kanri's virtualenv (the Makefile's `bench` targets do):

    ../.venv/bin/python -m kanri_bench                  # floor + Kanri, full loads (~8 min)
    ../.venv/bin/python -m kanri_bench --quick          # small loads (~3 min)
    ../.venv/bin/python -m kanri_bench --smoke          # correctness only, Kanri only (~90 s)
    ../.venv/bin/python -m kanri_bench --admin-runs 1000000   # + the admin at scale

Everything is loopback; every child runs in its own process group and is stopped on exit.
It writes only into its databases (--db, --floor-db, dropped and re-created unless
--reuse-db), its Redis database (--redis-url, FLUSHDB'd), and var/bench/.
"""

import argparse
import json
import signal
import subprocess
import sys
import time

from kanri_bench import kanri, loads
from kanri_bench.floor import Floor
from kanri_bench.harness import DEFAULT, ROOT, Harness
from kanri_bench.procs import free_port, start, stop_all, wait_port
from kanri_bench.report import report


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


def measure(target, load, ctx, results):
    """One load, its result kept (results.json) even if a later one fails; a load that
    cannot run (the shared server out of connections…) is recorded as failed."""
    try:
        results.append(loads.run(target, load, ctx))
    except Exception as error:  # a process, the network, the database: report it, go on
        print(f"  {target.name}-{load['label']}: could not run: {error!r}", flush=True)
        results.append(
            {"target": target.name, "label": f"{target.name}-{load['label']}", "ok": False}
            | {"error": repr(error)}
        )
    (ctx["out_dir"] / "results.json").write_text(json.dumps(results, indent=2, default=str))
    time.sleep(2)  # a breath between loads (checkpoint, autovacuum)


def parse(argv=None):
    ap = argparse.ArgumentParser(prog="kanri_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--harness", default=str(DEFAULT), help="the shared bench harness directory")
    ap.add_argument("--db", default="kanri_bench", help="Kanri's PostgreSQL database")
    ap.add_argument("--floor-db", default="kanri_bench_floor", help="the floor's database")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="FLUSHDB'd")
    ap.add_argument("--reuse-db", action="store_true", help="keep an existing Kanri database")
    ap.add_argument(
        "--no-migrate", action="store_true", help="with --reuse-db: the database is migrated"
    )
    ap.add_argument("--config", default="g3q4", help="gGqQ: gunicorn -w G, QUEUE_WORKERS=Q")
    ap.add_argument(
        "--clusters",
        type=int,
        default=1,
        help="qcluster processes (as on N hosts), each with QUEUE_WORKERS=Q, one Redis and DB",
    )
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the same loads, smaller")
    mode.add_argument("--smoke", action="store_true", help="correctness only, no floor")
    ap.add_argument("--no-floor", action="store_true", help="Kanri only (no ratios)")
    ap.add_argument(
        "--stripe",
        choices=["fake", "closed"],
        default="fake",
        help="fake: the development fake with seeded objects; closed: a closed port (outage)",
    )
    ap.add_argument("--stripe-slow", action="store_true", help="+ 100/s with Stripe +150 ms")
    ap.add_argument("--crash-test", action="store_true", help="+ SIGKILL qcluster mid-load")
    ap.add_argument("--admin-runs", type=int, default=0, help="+ the admin at N runs")
    ap.add_argument("--loads", help="only these loads, by label (comma-separated, e.g. r200-m03)")
    ap.add_argument(
        "--gunicorn-args", default="", help="more gunicorn options for Kanri, e.g. --preload"
    )
    ap.add_argument("--drain-timeout", type=int, default=300, help="max wait per load (s)")
    ap.add_argument("--out-dir", help="default: var/bench/<timestamp>")
    return ap.parse_args(argv)


def main(argv=None):
    from pathlib import Path

    args = parse(argv)
    harness = Harness(args.harness)
    t_begin = time.monotonic()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    out_dir = Path(args.out_dir or ROOT / "var" / "bench" / time.strftime("%Y%m%d-%H%M%S"))
    out_dir.mkdir(parents=True, exist_ok=True)

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")  # so that `finally` stops the children

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    g, q = (int(x) for x in args.config.lstrip("g").split("q"))
    the_loads = loads.SMOKE if args.smoke else loads.QUICK if args.quick else loads.FULL
    if args.loads:
        wanted = args.loads.split(",")
        the_loads = [x for x in the_loads if x["label"] in wanted]
    results = []
    try:
        sink_port = free_port()
        sink = start("sink", harness.sink_argv(sink_port), None, out_dir)
        wait_port(sink_port, sink)
        if args.stripe == "fake":
            stripe_port = free_port()
            kanri.start_fake_stripe(out_dir, stripe_port)
            stripe_host = f"http://127.0.0.1:{stripe_port}"
            stripe_choice = (
                f"the development fake at {stripe_host}, each event's payment intent and"
                " customer seeded in it; ~1 ms a call unless a load says 'Stripe +N ms'"
            )
        else:
            stripe_host = "http://127.0.0.1:9"  # discard port: connections refused at once
            stripe_choice = "closed port 127.0.0.1:9: a Stripe outage"
        ctx = {
            "harness": harness,
            "db_name": args.db,
            "floor_db": args.floor_db,
            "redis_url": args.redis_url,
            "out_dir": out_dir,
            "sink": f"http://127.0.0.1:{sink_port}",
            "sink_port": sink_port,
            "stripe_host": stripe_host,
            "stripe_url": stripe_host if args.stripe == "fake" else None,
            "drain_timeout": args.drain_timeout,
            "seed": 1,
            "run_id": time.strftime("%H%M%S"),
            "free_port": free_port,
            "gunicorn_args": args.gunicorn_args.split(),
        }
        code_at_start = git_state()
        if not (args.smoke or args.no_floor):
            print("The floor (gunicorn -w 3, PostgreSQL):", flush=True)
            with Floor(ctx) as floor:
                for load in the_loads:
                    measure(floor, load, ctx, results)

        env = kanri.env_for(args.db, args.redis_url, stripe_host=stripe_host, sink_port=sink_port)
        print(f"Kanri: database {args.db}…", flush=True)
        if not (args.reuse_db and args.no_migrate):
            kanri.prepare_database(args.db, args.reuse_db or args.smoke, env)
        ctx["path"] = kanri.create_rows(env)["path"]
        extra = []
        if args.stripe_slow and args.stripe == "fake":
            extra.append(loads.STRIPE_SLOW)
        if args.crash_test:
            extra.append(loads.CRASH)
        if args.loads:
            extra = [x for x in extra if x["label"] in args.loads.split(",")]
        clusters = f", {args.clusters} qclusters" if args.clusters > 1 else ""
        print(f"Kanri {args.config}: gunicorn -w {g}, QUEUE_WORKERS={q}{clusters}", flush=True)
        with kanri.Kanri(ctx, g, q, args.clusters) as target:
            for load in the_loads + extra:
                measure(target, load, ctx, results)
        report(
            results,
            {
                "started": started,
                "harness": harness.dir,
                "stripe_choice": stripe_choice,
                "config": args.config + (f" x{args.clusters}" if args.clusters > 1 else ""),
                "db": args.db,
                "redis_url": args.redis_url,
                "out_dir": out_dir,
                "elapsed": time.monotonic() - t_begin,
                "git": code_at_start
                if git_state() == code_at_start
                else f"{code_at_start}; CHANGED during the run, now {git_state()}",
            },
        )
    finally:
        stop_all()
    if args.admin_runs:
        from kanri_bench import admin_scale

        admin_scale.run_phase(args.db, args.admin_runs, out_dir, redis_url=args.redis_url)
    failed = [r["label"] for r in results if not r["ok"]]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
