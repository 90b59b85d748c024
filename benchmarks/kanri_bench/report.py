"""The printed report: one row per load and target, then Kanri / floor ratios."""

import os


def fmt(x, nd=0):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


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


def loads_table(results):
    header = "target load acks/s ack_p50 ack_p99 runs/s e2e_p50 e2e_p99 lost dup unexp non2xx check"
    rows = [header.split()]
    for r in results:
        s = r["summary"]
        a, e = s["ack_ms"], s.get("e2e_ms", {})
        rows.append(
            [
                r["target"],
                r["load"],
                fmt(s["throughput_acks_per_s"], 1),
                fmt(a.get("p50"), 1),
                fmt(a.get("p99"), 1),
                fmt(r["runs_per_s"], 1),
                fmt(e.get("p50"), 1),
                fmt(e.get("p99"), 1),
                fmt(r["posts"]["lost"]),
                fmt(r["posts"]["dup"]),
                fmt(r["posts"]["unexpected"]),
                fmt(s["n_requests"] - s["ok"]),
                "OK" if r["ok"] else "FAILED",
            ]
        )
    print_table(rows)


def _find(results, target, label):
    return next((r for r in results if r["target"] == target and r["label"].endswith(label)), None)


def app_db_cpu(r):
    """CPU ms per matching delivery of the application and its database."""
    if r is None or not r["cpu_ms_per_match"]:
        return None
    c = r["cpu_ms_per_match"]
    app = ("gunicorn", "postgres", "redis")  # and every qcluster (--clusters N)
    return round(sum(v or 0 for k, v in c.items() if k in app or k.startswith("qcluster")), 2)


def ratio_rows(results):
    """The issue's table, from this sitting: [figure, floor, kanri, kanri/floor]."""
    out = []

    def add(figure, label, get, kind="ratio"):
        f, k = _find(results, "floor", label), _find(results, "kanri", label)
        fv, kv = (get(f) if f else None), (get(k) if k else None)
        if kind == "ratio":
            rel = f"{kv / fv:.2f}" if fv and kv is not None else "-"
        else:  # a cost: how many times the floor's
            rel = f"x{kv / fv:.1f}" if fv and kv is not None else "-"
        out.append([figure, fmt(fv, 1), fmt(kv, 1), rel])

    add("runs/s, closed loop c=16, every event matching", "c16-m1", lambda r: r["runs_per_s"])
    add(
        "acks/s, same load",
        "c16-m1",
        lambda r: r["summary"]["throughput_acks_per_s"],
    )
    add("ack p99 (ms) at 200/s", "r200-m03", lambda r: r["summary"]["ack_ms"].get("p99"), "cost")
    add(
        "e2e p50 (ms) at 100/s, every event matching",
        "r100-m1",
        lambda r: r["summary"].get("e2e_ms", {}).get("p50"),
        "cost",
    )
    add(
        "e2e p99 (ms) at 100/s, every event matching",
        "r100-m1",
        lambda r: r["summary"].get("e2e_ms", {}).get("p99"),
        "cost",
    )
    add("CPU ms per matching delivery, app + database", "c16-m1", app_db_cpu, "cost")
    return out


def report(results, meta):
    broken = [r for r in results if "error" in r]
    results = [r for r in results if "error" not in r]
    print()
    print("=" * 100)
    print(f"Kanri and the floor, one sitting, {meta['started']}, {os.cpu_count()} CPUs")
    print(f"  code: {meta['git']}")
    print(f"  harness: {meta['harness']}")
    print(f"  Stripe API: {meta['stripe_choice']}")
    print(f"  Kanri: {meta['config']}, database {meta['db']}, broker {meta['redis_url']}")
    print(f"  raw results and logs: {meta['out_dir']}")
    print()
    loads_table(results)
    print("  latencies in ms. runs/s: Slack posts for matching events / (last post - first send).")
    print("  lost, dup, unexp: counted from the sink once the target has settled.")

    if any(r["target"] == "floor" for r in results):
        print()
        print("Kanri / floor, measured in this sitting under the same loads:")
        print()
        print("| figure | floor | Kanri | Kanri / floor |")
        print("| --- | --- | --- | --- |")
        for row in ratio_rows(results):
            print("| " + " | ".join(row) + " |")

    print()
    print("Checks per load:")
    for r in results:
        d = r["db"]
        if r["target"] == "floor":
            print(f"  {r['label']}: {'OK' if r['ok'] else 'FAILED'}: {d}")
            continue
        st = r["settle"]
        print(
            f"  {r['label']}: {'OK' if r['ok'] else 'FAILED'}: {d['runs']} runs for"
            f" {d['matching_events']} matching events, {d['runs_for_non_matching']} for"
            f" non-matching; status {d['run_status']}; taken more than once"
            f" {d['runs_retaken']}; steps {d['step_status']}"
        )
        print(
            f"      {d['deliveries']} deliveries -> {d['triggers']} trigger rows,"
            f" {d['triggers_processed']} synced, {d['triggers_failed']} failed"
            f" {d['trigger_exceptions'] or ''}; dj-stripe Event rows {d['stripe_events']}/"
            f"{d['distinct_events']}; queue wait p50/p99 {fmt(d['queue_wait_ms'][0])}/"
            f"{fmt(d['queue_wait_ms'][1])} ms; mirror lag p50/p99"
            f" {fmt(d['mirror_lag_ms'][0])}/{fmt(d['mirror_lag_ms'][1])} ms;"
            f" settled {st['waited_s']} s after loadgen,"
            f" left {st['pending_triggers']} syncs + {st['pending_runs']} runs pending"
        )
        print(
            f"      audit: {fmt(d['audit_row_bytes_per_run'])} B of row per run (run + steps),"
            f" {fmt(d['audit_disk_bytes_per_run'])} B on disk per run (what tables, TOAST and"
            f" indexes grew by, no VACUUM FULL); peak PSS {r['pss_peak_mb']} MB"
        )

    print()
    print("CPU ms per matching delivery over the whole load (PostgreSQL counts every database):")
    for r in results:
        per = ", ".join(f"{k} {v}" for k, v in r["cpu_ms_per_match"].items())
        print(f"  {r['label']}: {per or 'n/a'}; machine {r['machine_busy_pct']}%")

    calls = [(r["label"], r["stripe_calls"], r["db"]) for r in results if "stripe_calls" in r]
    if calls:
        print()
        print("Stripe API calls made by the mirror (fake Stripe's log):")
        for label, c, d in calls:
            per = sum(c.values()) / max(1, d["distinct_events"])
            print(f"  {label}: {per:.2f} per event {c}")

    print()
    print("Errors in the logs during each load:")
    any_err = False
    for r in results:
        for name, found in r["log_errors"].items():
            for line, count in sorted(found.items(), key=lambda kv: -kv[1])[:6]:
                any_err = True
                print(f"  {r['label']} {name}: {count} x {line}")
    if not any_err:
        print("  none")
    for r in broken:
        print(f"  {r['label']}: could not run: {r['error']}")
    print()
    print(f"Total wall time {meta['elapsed']:.0f} s")
