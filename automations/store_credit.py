"""Bulk refund to store credit (scenario C): the workflow preset, what a bulk request will
credit, and the report of one (rows for the result page, and its CSV).

Staff select charges (the admin's "Refund as store credit…", or `manage.py store_credit`
with a CSV of charge ids); `workflows.run_on` starts one run of the store-credit workflow
per charge as one Batch. The workflow moves money, so it runs at most once per charge:
asking again credits nothing, and the report says the charge was already credited.
"""

import csv
from datetime import UTC, datetime

from django.utils import translation
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from automations import definition, workflows
from automations.engine import keys
from automations.engine.conditions import describe, matches
from automations.engine.context import build_context
from automations.engine.references import RenderError, render
from automations.models import Run, RunStep, TriggerKind, Workflow
from automations.money import format_money, from_minor
from automations.triggers import manual

KIND = "stripe.store_credit"
NAME = "Refund as store credit"
OBJECT = "charge"
COLUMNS = [
    "charge",
    "customer",
    "email",
    "amount",
    "currency",
    "credit type",
    "credit id or code",
    "expires_at",
    "status",
    "error",
]
STATUSES = ("credited", "skipped", "failed", "pending")

# The preset's money caps, in minor units: what one run and one day's runs may credit.
# Above them a run waits for an approver; staff set their own in the editor.
LIMITS = {
    "per_run": {"jpy": 100_000, "usd": 100_000, "eur": 100_000},
    "per_day": {"jpy": 5_000_000, "usd": 5_000_000, "eur": 5_000_000},
}

CHARGE = "trigger.data.object"
# The preset's conditions, and the words for a charge that fails one of them.
CONDITIONS = [
    [
        {"field": f"{CHARGE}.customer", "op": "is_set"},
        {"field": f"{CHARGE}.paid", "op": "eq", "value": True},
        {"field": f"{CHARGE}.refunded", "op": "eq", "value": False},
    ]
]
CONDITION_REASONS = {
    f"{CHARGE}.customer": _("no customer"),
    f"{CHARGE}.paid": _("not paid"),
    f"{CHARGE}.refunded": _("already refunded"),
}

# The customer's message, in the customer's language; %(…)s are filled with references.
SUBJECT = _("Your store credit of %(amount)s")
PROMOTION_CODE_BODY = _(
    "Hello,\n"
    "\n"
    "Instead of a refund to your card, we have given you store credit of %(amount)s "
    "for your payment of %(paid)s.\n"
    "\n"
    "Your code: %(code)s\n"
    "Use it by: %(expires)s\n"
    "\n"
    "Only you can use this code, once.\n"
    "\n"
    "Thank you for your patience.\n"
)
BALANCE_BODY = _(
    "Hello,\n"
    "\n"
    "Instead of a refund to your card, we have added store credit of %(amount)s to your "
    "account for your payment of %(paid)s. It is taken off your next invoices "
    "automatically.\n"
    "\n"
    "Thank you for your patience.\n"
)
LANGUAGES = ("ja", "en")  # the first is chosen by a branch, the last is "all other cases"


# ------------------------------------------------------------------ the preset


def _email(language, form):
    values = {
        "amount": "{{steps.credit.amount | money}}",
        "paid": f"{{{{{CHARGE}.amount | money}}}}",
        "code": "{{steps.credit.code}}",
        "expires": "{{steps.credit.expires_on}}",
    }
    body = PROMOTION_CODE_BODY if form == "promotion_code" else BALANCE_BODY
    with translation.override(language):
        return {
            "name": f"email_{language}",
            "kind": "email.send",
            "config": {
                "recipient": "customer",
                "customer": "{{steps.credit.customer}}",
                "subject": str(SUBJECT) % values,
                "body": str(body) % values,
            },
        }


def preset(form="promotion_code", expires_in_days=365, limits=None, name=NAME):
    """Return the definition of the manual workflow on charges "Refund as store credit".

    A charge with a customer, paid and not refunded gets store credit worth its amount
    (`form`: a promotion code only that customer can use once, expiring after
    `expires_in_days`, or a credit balance), with its booking_id copied; the charge is
    marked with the credit; the customer, if they have an email address, is emailed in
    Japanese or English (their preferred locales). It moves money, so an approver
    activates it.
    """
    credit = {
        "customer": f"{{{{{CHARGE}.customer}}}}",
        "amount": f"{{{{{CHARGE}.amount}}}}",
        "currency": f"{{{{{CHARGE}.currency}}}}",
        "form": form,
        "charge": f"{{{{{CHARGE}.id}}}}",
        "description": f"Store credit for {{{{{CHARGE}.id}}}}",
        "copy_from": f"{{{{{CHARGE}.metadata}}}}",
        "copy_metadata": "booking_id",
    }
    mark = {"kanri_credit": "{{steps.credit.credit_id}}"}
    if form == "promotion_code":
        credit["expires_in_days"] = expires_in_days
        mark["kanri_credit_code"] = "{{steps.credit.code}}"
    first, other = LANGUAGES
    return {
        "name": name,
        "description": "Refund selected charges as store credit instead of cash: the "
        "customer gets credit worth the charge (booking_id kept), the charge is marked "
        "with it, and the customer is emailed in their language.",
        "trigger": {"kind": TriggerKind.MANUAL, "object": OBJECT},
        "conditions": CONDITIONS,
        "limits": limits or LIMITS,
        "steps": [
            {"name": "credit", "kind": KIND, "config": credit},
            {
                "name": "mark_charge",
                "kind": "stripe.update_charge_metadata",
                "config": {"charge": f"{{{{{CHARGE}.id}}}}", "metadata": mark},
            },
            {
                # A customer without an email address keeps the credit; the report shows
                # the address as blank.
                "name": "customer_has_email",
                "kind": "branch",
                "conditions": [[{"field": "steps.credit.email", "op": "is_set"}]],
                "then": [
                    {
                        "name": "customer_language",
                        "kind": "branch",
                        "conditions": [
                            [{"field": "steps.credit.language", "op": "eq", "value": first}]
                        ],
                        "then": [_email(first, form)],
                        "else": [_email(other, form)],
                    }
                ],
                "else": [],
            },
        ],
    }


# ------------------------------------------------------------------ before a bulk request


def credit_steps(data):
    """Return the store-credit steps of a definition."""
    return [s for s in definition.iter_steps(data.get("steps") or []) if s.get("kind") == KIND]


def credit_workflows():
    """Return the active manual workflows on charges that give store credit, as plain dicts."""
    found = Workflow.objects.filter(
        status=Workflow.Status.ACTIVE,
        trigger_kind=TriggerKind.MANUAL,
        object_type=OBJECT,
        active_version__isnull=False,
    ).select_related("active_version")
    return [
        {"id": w.pk, "name": w.name}
        for w in found.order_by("name")
        if credit_steps(w.active_version.definition)
    ]


def _credit_of(step, context):
    """Return (amount, currency) the step would credit, read from the trigger's data only."""
    config = step.get("config") or {}
    try:
        amount = render(config.get("amount"), context)
        currency = render(config.get("currency") or config.get("amount_currency") or "", context)
    except RenderError:
        return None, ""
    if not isinstance(amount, int) or isinstance(amount, bool):
        return None, ""
    return amount, str(currency or "").lower()


def plan(workflow, charges):
    """Return what a bulk request would do to each charge, and the totals it would credit.

    `charges` are the charges' Stripe data. Each row says whether the charge would be
    credited, or why not (its conditions, or an earlier run of this workflow on it), with
    the amount the credit step reads from the charge. Nothing is sent.
    """
    data = workflow.active_version.definition
    steps = credit_steps(data)
    earlier = dict(
        Run.objects.filter(
            workflow=workflow, trigger_key__in=[keys.manual_key(c["id"]) for c in charges]
        ).values_list("trigger_key", "pk")
    )
    rows, totals = [], {}
    for charge in charges:
        context = build_context(manual.data_for(charge, OBJECT))
        amount, currency = _credit_of(steps[0], context) if steps else (None, "")
        row = {
            "id": charge["id"],
            "amount": amount,
            "currency": currency,
            "amount_display": format_money(amount, currency) if amount is not None else "",
            "customer": charge.get("customer") or "",
            "email": _charge_email(charge),
            "credit": False,
            "reason": "",
        }
        run = earlier.get(keys.manual_key(charge["id"]))
        matched, explanation = matches(data.get("conditions") or [], context)
        if run is not None:
            row["reason"] = _t("already run (run %(run)s)") % {"run": run}
        elif not matched:
            row["reason"] = _conditions_text([c for c in explanation if not c["matched"]])
        else:
            row["credit"] = True
            if amount is not None and currency:
                totals[currency] = totals.get(currency, 0) + amount
        rows.append(row)
    return {
        "rows": rows,
        "count": sum(1 for r in rows if r["credit"]),
        "totals": [
            {"currency": c, "amount": a, "display": format_money(a, c)}
            for c, a in sorted(totals.items())
        ],
    }


def _charge_email(charge):
    return (charge.get("billing_details") or {}).get("email") or charge.get("receipt_email") or ""


def _conditions_text(failed):
    texts = []
    for condition in failed:
        reason = CONDITION_REASONS.get(condition.get("field"))
        # Batches before reasons were codes stored the test's English words as "test".
        test = describe(condition) if condition.get("op") else condition.get("test")
        texts.append(str(reason) if reason else str(test or condition["field"]))
    if texts and all(CONDITION_REASONS.get(c.get("field")) for c in failed):
        return ", ".join(texts)
    return _t("conditions not met: %(tests)s") % {"tests": "; ".join(texts)}


# ------------------------------------------------------------------ after it: the report


def _status(run):
    if run.status == Run.Status.SUCCEEDED:
        return "credited"
    if run.status in Run.FINISHED:
        return "failed"
    return "pending"


def _run_error(run):
    if run.status == Run.Status.CANCELLED:
        return _t("cancelled")
    if run.status == Run.Status.HELD and run.hold_reason:
        return str(Run.HoldReason(run.hold_reason).label)
    return run.error


def report(batch):
    """Return one plain row per charge of a batch, from workflows.batch_report: the credit
    (this request's, or an earlier run's), its status and why.

    status: credited, skipped (no run started: the reason says why), failed (the run's
    error) or pending (queued, running, waiting to retry, or held for a person).
    """
    items = workflows.batch_report(batch)
    runs = {
        run.pk: run
        for run in Run.objects.filter(pk__in=[i["run"] for i in items if i["run"]])
        .select_related("event")
        .only("pk", "status", "hold_reason", "error", "trigger_data", "event__data")
    }
    credits = {
        run_id: output
        for run_id, output in RunStep.objects.filter(
            run_id__in=runs, kind=KIND, status=RunStep.Status.SUCCEEDED
        ).values_list("run_id", "output")
    }
    stored = {c["id"]: c for c in manual.load(OBJECT, [i["id"] for i in items])}
    rows = []
    for item in items:
        run = runs.get(item["run"])
        charge = stored.get(item["id"]) or {}
        if run is not None:
            charge = run.snapshot.get("data", {}).get("object") or charge
        credit = credits.get(item["run"]) or {}
        if item["status"] == "skipped":
            status, error = _skipped(item, run, credit)
        else:
            status, error = _status(run), _run_error(run)
        rows.append(_row(item, charge, credit, status, error))
    return rows


def _skipped(item, earlier, credit):
    """Return (status, error) for a charge this request started no run for."""
    reason, params = item["reason"], item["params"]
    if reason == "missing":
        return "failed", _t("charge not found")
    if reason == "pruned":
        return "skipped", _t("its run (run %(run)s) was pruned since") % {"run": item["run"]}
    if reason == "conditions":
        return "skipped", _conditions_text(params.get("failed") or [])
    if reason == "already_run" and earlier is not None:
        if credit:
            return "skipped", _t("already credited (run %(run)s)") % {"run": earlier.pk}
        return "skipped", _t("already run (run %(run)s): %(status)s") % {
            "run": earlier.pk,
            "status": earlier.get_status_display(),
        }
    return "skipped", reason


def _row(item, charge, credit, status, error):
    amount = credit.get("amount", charge.get("amount"))
    currency = credit.get("currency") or charge.get("currency") or ""
    expires_at = credit.get("expires_at")
    code = credit.get("code") if credit.get("credit_type") == "promotion_code" else ""
    return {
        "charge": item["id"],
        "run": item["run"],
        "customer": credit.get("customer") or charge.get("customer") or "",
        "email": credit.get("email") or _charge_email(charge),
        "amount": amount if isinstance(amount, int) else None,
        "currency": currency,
        "amount_display": format_money(amount, currency)
        if isinstance(amount, int) and currency
        else "",
        "credit_type": credit.get("credit_type") or "",
        "credit": code or credit.get("credit_id") or "",
        "expires_at": datetime.fromtimestamp(expires_at, tz=UTC).isoformat()
        if isinstance(expires_at, int)
        else "",
        "expires_on": credit.get("expires_on") or "",
        "status": status,
        "error": error or "",
    }


def counts(rows):
    """Return {status: number of rows} for every status, in STATUSES order."""
    found = {status: 0 for status in STATUSES}
    for row in rows:
        found[row["status"]] += 1
    return found


def summary(rows):
    """Return the one-line summary of a report, e.g. "48 credited, 1 skipped, …"."""
    return _t(
        "%(credited)d credited, %(skipped)d skipped, %(failed)d failed, %(pending)d pending"
    ) % counts(rows)


def write_csv(rows, out):
    """Write a report as CSV to the text file `out`: one line per charge, amounts in major
    units beside their currency (as Stripe's own exports), times in UTC."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        amount = row["amount"]
        writer.writerow(
            [
                row["charge"],
                row["customer"],
                row["email"],
                from_minor(amount, row["currency"]) if amount is not None else "",
                row["currency"],
                row["credit_type"],
                row["credit"],
                row["expires_at"],
                row["status"],
                row["error"],
            ]
        )
