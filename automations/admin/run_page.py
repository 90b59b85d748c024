"""The run page as people read it: a timeline of the version's steps, branches with the arm
taken and why, messages as their recipients saw them, and time spent working apart from
time spent waiting to retry.

Plain dicts for templates/admin/automations/run/detail.html; the run's rows are only read.
"""

import re
from itertools import pairwise

from django.utils import timezone
from django.utils.translation import gettext as _t

from automations import alerts
from automations.admin import readable
from automations.engine import conditions
from automations.models import RunStep, Step
from automations.money import format_money
from automations.redaction import redact, redact_data
from integrations.registry import ACTIONS, get_action

ARMS = (("then", Step.Arm.THEN.label), ("else", Step.Arm.ELSE.label))


def duration_text(ms):
    """Return a duration as people say it: "250 ms", "1.5 s", "2 min 5 s", "1 h 10 min"."""
    ms = max(0, int(ms or 0))
    if ms < 1000:
        return _t("%(ms)d ms") % {"ms": ms}
    seconds = ms / 1000
    if seconds < 60:
        return _t("%(s).1f s") % {"s": seconds}
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return _t("%(m)d min %(s)d s") % {"m": minutes, "s": seconds}
    hours, minutes = divmod(minutes, 60)
    return _t("%(h)d h %(m)d min") % {"h": hours, "m": minutes}


def _ms(start, end):
    if start is None or end is None:
        return 0
    return max(0, int((end - start).total_seconds() * 1000))


def _label(kind):
    if kind == Step.BRANCH:
        return _t("Branch")
    return str(get_action(kind).label) if kind in ACTIONS else kind


def condition_rows(explanation):
    """Return each evaluated condition in words: field, test, actual value, result, why."""
    # Stored results hold codes and parameters; `explain` words them in the reader's
    # language (gettext), so an old run reads in Japanese or English alike.
    rows = []
    for result in explanation or []:
        if not isinstance(result, dict):
            continue
        currency = str(result.get("currency") or "")
        actual = result.get("actual")
        if currency and isinstance(actual, int) and not isinstance(actual, bool):
            shown = format_money(actual, currency)
        elif actual is None:
            shown = "—"
        else:
            shown = readable.json_text(actual)
        test = readable.condition_test(result) if "op" in result else ""
        rows.append(
            {
                "group": result.get("group", 1),
                "field": result.get("field", ""),
                "test": test,
                "actual": shown,
                "matched": bool(result.get("matched")),
                "why": str(conditions.explain(result)),
            }
        )
    return rows


def message(kind, request):
    """Return a step's request as its recipient sees it (an email, a Slack post), or None."""
    if not isinstance(request, dict):
        return None
    if kind == "email.send":
        return {
            "type": "email",
            "from": request.get("from", ""),
            "to": ", ".join(request.get("to") or []),
            "subject": request.get("subject", ""),
            "body": request.get("body", ""),
            "rows": [r for r in request.get("rows") or [] if isinstance(r, dict)],
        }
    if kind == "slack.post_message":
        return {
            "type": "slack",
            "channel": request.get("channel", ""),
            "text": slack_text(request.get("text", "")),
            "blocks": [slack_text(t) for t in _block_texts(request.get("blocks"))],
        }
    return None


def slack_text(text):
    """Return Slack's escaped message text as Slack shows it: "<!here>" as "@here"."""
    text = str(text or "")
    text = re.sub(r"<!(here|channel|everyone)>", r"@\1", text)
    text = re.sub(r"<@([A-Z0-9]+)>", r"@\1", text)
    text = re.sub(r"<([^|>]+)\|([^>]+)>", r"\2", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _block_texts(blocks):
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict):
            continue
        text = block.get("text")
        if isinstance(text, dict) and isinstance(text.get("text"), str):
            yield text["text"]
        for field in block.get("fields") or []:
            if isinstance(field, dict) and isinstance(field.get("text"), str):
                yield field["text"]


def _attempt(row, t0, span_ms):
    worked = row.duration_ms or _ms(row.started_at, row.finished_at)
    left = _ms(t0, row.started_at) * 100 / span_ms if span_ms else 0
    return {
        "attempt": row.attempt,
        "status": row.status,
        "status_label": str(row.get_status_display()),
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "worked_ms": worked,
        "worked": duration_text(worked),
        "error": redact(row.error),
        "idempotency_key": row.idempotency_key,
        "decision": str(row.get_decision_display()) if row.decision else "",
        "decided_by": row.decided_by.get_username() if row.decided_by_id else "",
        "undecided": row.status == RunStep.Status.UNKNOWN and not row.decision,
        # Where the attempt sits on the run's timeline, in percent.
        "left": round(min(left, 100), 2),
        "width": round(max(worked * 100 / span_ms, 0.6), 2) if span_ms else 100,
    }


def _node(step, rows, t0, span_ms, taken=True):
    """One step of the version, with its attempts and, for a branch, its two arms."""
    kind = step.get("kind", "")
    attempts = [_attempt(r, t0, span_ms) for r in rows.get(step.get("name"), [])]
    waited = 0
    waits = []
    for before, after in pairwise(attempts):
        gap = _ms(before["finished_at"], after["started_at"])
        waited += gap
        left = before["left"] + before["width"]
        waits.append(
            {"left": round(min(left, 100), 2), "width": round(gap * 100 / span_ms, 2)}
            if span_ms
            else {"left": 0, "width": 0}
        )
    worked = sum(a["worked_ms"] for a in attempts)
    last = rows.get(step.get("name"), [])[-1:] or [None]
    last = last[0]
    node = {
        "name": step.get("name", ""),
        "kind": kind,
        "label": _label(kind),
        "taken": taken,
        "ran": bool(attempts),
        "attempts": attempts,
        "last": attempts[-1] if attempts else None,
        "worked": duration_text(worked),
        "waited": duration_text(waited) if waited else "",
        "waits": waits,
        "status": attempts[-1]["status"] if attempts else "",
        "status_label": attempts[-1]["status_label"] if attempts else "",
        "message": None,
        "input": [],
        "output": [],
        "money": [],
        "arms": [],
        "conditions": [],
    }
    if kind == Step.BRANCH:
        output = (last.output or {}) if last is not None else {}
        arm = output.get("arm") if isinstance(output, dict) else None
        node["conditions"] = condition_rows(output.get("conditions"))
        for key, label in ARMS:
            node["arms"].append(
                {
                    "key": key,
                    "label": str(label),
                    "taken": arm == key,
                    "steps": [
                        _node(s, rows, t0, span_ms, taken and arm == key)
                        for s in step.get(key) or []
                        if isinstance(s, dict)
                    ],
                }
            )
        node["arm"] = arm
    elif last is not None:
        request = redact_data(last.input)
        node["message"] = message(kind, request)
        node["input"] = readable.json_lines(request)
        node["output"] = readable.json_lines(redact_data(last.output))
        node["money"] = readable.money_in(request)
    return node


def timeline(run):
    """Return the run's steps as a tree in the version's order, and its time totals."""
    rows = {}
    all_rows = list(run.steps.select_related("decided_by").order_by("pk"))
    for row in all_rows:
        rows.setdefault(row.step_name, []).append(row)
    starts = [r.started_at for r in all_rows if r.started_at]
    ends = [r.finished_at or r.started_at for r in all_rows if r.started_at]
    t0 = min(starts) if starts else run.started_at
    t1 = max(ends) if ends else (run.finished_at or t0)
    if run.finished_at and t1 and run.finished_at > t1:
        t1 = run.finished_at
    span_ms = _ms(t0, t1) or 1
    steps = [
        _node(s, rows, t0, span_ms)
        for s in (run.version.definition or {}).get("steps") or []
        if isinstance(s, dict)
    ]
    known = set()

    def names(nodes):
        for node in nodes:
            known.add(node["name"])
            for arm in node["arms"]:
                names(arm["steps"])

    names(steps)
    # A step no longer in the version (it cannot happen today) is still shown.
    steps += [
        _node({"name": name, "kind": rs[0].kind}, rows, t0, span_ms)
        for name, rs in rows.items()
        if name not in known
    ]
    worked = sum(r.duration_ms or _ms(r.started_at, r.finished_at) for r in all_rows)
    waited = 0
    for attempts in rows.values():
        for before, after in pairwise(attempts):
            waited += _ms(before.finished_at, after.started_at)
    queued = _ms(run.created_at, run.started_at)
    if run.status == run.Status.RETRYING and run.next_attempt_at:
        waiting_now = _ms(timezone.now(), run.next_attempt_at)
    else:
        waiting_now = 0
    return {
        "steps": steps,
        "worked": duration_text(worked),
        "waited": duration_text(waited),
        "queued": duration_text(queued),
        "waiting_now": duration_text(waiting_now) if waiting_now else "",
        "span": duration_text(_ms(t0, t1)) if all_rows else "",
        "alert": alerts.alert_of(run) if run.status == run.Status.FAILED else None,
    }


def preview_context(result):
    """Return a preview's report as the preview page shows it: conditions in words, each
    step's request as its recipient would see it, and pretty JSON with money."""
    if not result:
        return result
    shown = dict(result)
    shown["conditions"] = []
    for c in result["conditions"]:
        [row] = condition_rows([c])
        shown["conditions"].append(
            {**c, "actual": row["actual"], "test": row["test"], "why": c.get("why") or row["why"]}
        )
    steps = []
    for step in result["steps"]:
        step = dict(step)
        if step["kind"] == Step.BRANCH:
            step["rows"] = condition_rows(step.get("conditions"))
        else:
            step["message"] = message(step["kind"], redact_data(step.get("request")))
            step["request_lines"] = readable.json_lines(redact_data(step.get("request")))
            step["output_lines"] = readable.json_lines(redact_data(step.get("output")))
        steps.append(step)
    shown["steps"] = steps
    return shown
