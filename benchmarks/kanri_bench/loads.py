"""One load (loadgen, closed or open loop) against one target, and what it measured."""

import json
import os
import subprocess
import threading
import time

from kanri_bench import fake_stripe
from kanri_bench.procs import (
    CpuSampler,
    cpu_seconds,
    http_json,
    log_size,
    machine_busy,
    pg_log_file,
    scan_log,
    scan_pg_log,
)

# The loads of the table: each runs against the floor and against Kanri.
FULL = [
    {"label": "c16-m1", "concurrency": 16, "n": 3000, "match": 1.0, "warmup": 50},
    {"label": "r200-m03", "rate": 200, "duration": 20, "match": 0.3},
    {"label": "r100-m1", "rate": 100, "duration": 20, "match": 1.0},
]
QUICK = [
    {"label": "c16-m1", "concurrency": 16, "n": 600, "match": 1.0, "warmup": 30},
    {"label": "r200-m03", "rate": 200, "duration": 5, "match": 0.3},
    {"label": "r100-m1", "rate": 100, "duration": 5, "match": 1.0},
]
# Correctness only (CI): every outcome checked, no figure compared.
SMOKE = [
    {"label": "smoke-c8", "concurrency": 8, "n": 200, "match": 0.5},
    {"label": "smoke-r50-resend", "rate": 50, "duration": 4, "match": 0.5, "resend": 0.2},
]
# Kanri only: each Stripe call slowed to a real round trip; and the cluster killed mid-load.
# Its events come from 50 returning customers, each fetched once (by the warm-up) and then
# known to the mirror: the "calls per event for known customers".
STRIPE_SLOW = {"label": "r100-m03-stripe150", "rate": 100, "duration": 20, "match": 0.3}
STRIPE_SLOW |= {"stripe_ms": 150, "customers": 50, "warmup": 50}
CRASH = {"label": "r50-m1-crash", "rate": 50, "duration": 20, "match": 1.0, "crash_at": 8}


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


def run(target, load, ctx):
    """Run loadgen once, wait for the target to finish the work, and check its database."""
    label = f"{target.name}-{load['label']}"
    out_dir = ctx["out_dir"]
    out_json, raw = out_dir / f"{label}.json", out_dir / f"{label}.raw.jsonl"
    n_events = load.get("n") or round(load["rate"] * load["duration"])
    objects = None
    if target.stripe_url:
        # Warm-up events refer to the objects after the measured ones: seed those too.
        tag = f"{ctx['run_id']}{ctx['seed']}"  # never an object an earlier load synced
        lines = fake_stripe.seed_objects(
            target.stripe_url, tag, n_events + load.get("warmup", 0), load.get("customers")
        )
        objects = out_dir / f"{label}.objects"
        objects.write_text("\n".join(lines) + "\n")
        fake_stripe.set_latency(target.stripe_url, load.get("stripe_ms", 0))
    cmd = ctx["harness"].loadgen_argv(
        url=target.url,
        sink=ctx["sink"],
        label=label,
        out=out_json,
        raw=raw,
        load=load,
        seed=ctx["seed"],
        drain_timeout=ctx["drain_timeout"],
        objects=objects,
    )
    ctx["seed"] += 1
    marks = {n: log_size(out_dir / f"{n}.log") for n in target.logs}
    pg_log = pg_log_file()
    pg_mark = log_size(pg_log) if pg_log else None
    target.before_load()
    cpu0, busy0 = cpu_seconds(target.watch), machine_busy()
    sampler = CpuSampler(target.watch, pss_of=target.logs)
    sampler.start()
    t_start = time.time()
    print(f"  {label}: {describe(load)} …", flush=True)
    crash = None
    if load.get("crash_at"):
        crash = threading.Timer(load["crash_at"], target.crash_cluster)
        crash.start()
    try:
        with open(out_dir / "loadgen.log", "a") as loadgen_log:
            subprocess.run(
                cmd, check=True, timeout=300 + ctx["drain_timeout"] + 180, stderr=loadgen_log
            )
    finally:
        if crash:
            crash.join()
    summary = json.loads(out_json.read_text())
    rows = [json.loads(x) for x in raw.read_text().splitlines() if x.strip()]
    records = http_json(ctx["sink"] + "/_records")
    # Kanri still has work after the last Slack post (the syncs of non-matching events).
    settle = target.settle(t_start, ctx["drain_timeout"])
    sampler.stop()
    cpu1, busy1 = cpu_seconds(target.watch), machine_busy()
    if target.stripe_url:
        fake_stripe.set_latency(target.stripe_url, 0)
    matching = sum(1 for r in rows if r["match"]) or 1
    result = {
        "target": target.name,
        "label": label,
        "load": describe(load),
        "spec": load,
        "summary": summary,
        "settle": settle,
        "wall_s": round(time.time() - t_start, 1),
        # Over the whole load (sending and settling), per delivery and per matching one.
        "cpu_ms_per_delivery": {
            name: round(1000 * (cpu1[name] - cpu0[name]) / max(1, len(rows)), 2)
            for name in cpu0
            if cpu0[name] is not None and cpu1.get(name) is not None and not load.get("crash_at")
        },
        "cpu_ms_per_match": {
            name: round(1000 * (cpu1[name] - cpu0[name]) / matching, 2)
            for name in cpu0
            if cpu0[name] is not None and cpu1.get(name) is not None and not load.get("crash_at")
        },
        "machine_busy_pct": round(
            100 * os.cpu_count() * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
        ),
        "pss_peak_mb": sampler.pss_peak,
    }
    result.update(e2e_throughput(rows, records))
    acked = [r["sent_wall_ns"] + r["ack_ns"] for r in rows if r["sent_wall_ns"] and r["ack_ns"]]
    if acked and not load.get("crash_at"):
        result["cpu_pct_sending"] = sampler.usage(result["first_send"], max(acked) / 1e9)
    result["db"] = target.check(rows, t_start)
    # loadgen stops reading the sink once it has been quiet for a while; a backlog may post
    # after that. Count again once the target has settled: lost means never posted.
    result["posts"] = posts_after_settle(rows, http_json(ctx["sink"] + "/_records"))
    result["ok"] = target.verdict(result["db"]) and not any(result["posts"].values())
    if target.stripe_url:
        result["stripe_calls"] = fake_stripe.calls(target.stripe_url)
    result["log_errors"] = {
        name: scan_log(out_dir / f"{name}.log", mark) for name, mark in marks.items()
    }
    if pg_log:
        result["log_errors"]["postgres"] = scan_pg_log(pg_log, pg_mark, target.db_name)
    print("    " + one_line(result), flush=True)
    return result


def posts_after_settle(rows, records):
    """Lost, duplicated and unexpected Slack posts, counted from the sink's whole record."""
    matching = {r["evt"] for r in rows if r["match"]}
    others = {r["evt"] for r in rows if not r["match"]}
    seen = {}
    for rec in records:
        if rec["path"].endswith("chat.postMessage"):
            for evt in rec["evt_ids"]:
                seen[evt] = seen.get(evt, 0) + 1
    return {
        "lost": sum(1 for evt in matching if evt not in seen),
        "dup": sum(seen[evt] - 1 for evt in matching if evt in seen),
        "unexpected": sum(seen.get(evt, 0) for evt in others),
    }


def e2e_throughput(rows, records):
    """Slack posts per second for this load's matching events, from its first send to its
    last post: the rate the target actually carried work end to end."""
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


def one_line(r):
    s, d = r["summary"], r["db"]
    a, e = s["ack_ms"], s.get("e2e_ms", {})
    line = (
        f"{'OK' if r['ok'] else 'FAILED'} | acks {s['throughput_acks_per_s']}/s"
        f" p50/p99 {a.get('p50')}/{a.get('p99')} ms"
        f" | runs {r['runs_per_s']}/s e2e p50/p99 {e.get('p50')}/{e.get('p99')} ms"
        f" | lost {r['posts']['lost']} dup {r['posts']['dup']} unexp {r['posts']['unexpected']}"
        f" (loadgen's, before settling: {s.get('lost')}/{s.get('dup')}/{s.get('unexpected')})"
        f" | non-2xx {s['n_requests'] - s['ok']}"
    )
    if "runs" in d:
        line += (
            f" | runs {d['runs']}/{d['matching_events']} {d['run_status']}"
            f" | syncs failed {d['triggers_failed']} | settled in {r['settle']['waited_s']} s"
        )
    else:
        line += f" | stored {d['stored_events']}/{d['distinct_events']}"
    return line
