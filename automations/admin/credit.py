"""'Refund as store credit…' on the Payments list, and the page with its result.

The action asks which store-credit workflow to run (manual workflows on charges with a
`stripe.store_credit` step) when there is more than one, shows a confirmation
(automations/admin/actions.py confirm_selected): how many charges get credit, the total
per currency, the charges left out and why, and the dry-run of the first three. On "yes"
it calls workflows.run_on and goes to the batch's result page, which lists each charge's
row of the report and offers it as CSV. The rules (who may run it, once per charge) are
the service's: workflows.can_run and run_on.
"""

import io

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from automations import store_credit, workflows
from automations.admin.actions import choose_workflow, confirm_selected
from automations.admin.base import page
from automations.engine import keys
from automations.models import Batch

RUN_PERMISSION = "automations.run_workflow"
VIEW_PERMISSION = "automations.view_batch"
SHOWN = 3  # charges whose dry-run the confirmation shows
STATUS_LABELS = {
    "credited": _("credited"),
    "skipped": _("skipped"),
    "failed": _("failed"),
    "pending": _("pending"),
}
CREDIT_LABELS = {"balance": _("credit balance"), "promotion_code": _("promotion code")}


def _totals_text(totals):
    return ", ".join(t["display"] for t in totals) or "—"


def _row(row):
    detail = [row["amount_display"], row["email"] or row["customer"], row["reason"]]
    return {"label": row["id"], "detail": " · ".join(d for d in detail if d)}


@admin.action(description=_("Refund as store credit…"))
def refund_as_store_credit(modeladmin, request, queryset):
    """Give each selected charge's customer store credit through a store-credit workflow."""
    if not request.user.has_perm(RUN_PERMISSION):
        modeladmin.message_user(request, workflows.reason_text("run_permission"), messages.ERROR)
        return None
    selected = list(queryset.order_by("pk"))
    charges = [{**(obj.stripe_data or {}), "id": obj.id} for obj in selected]
    choices = store_credit.credit_workflows()
    workflow, choosing = choose_workflow(
        modeladmin,
        request,
        queryset,
        choices,
        rows=[{"label": c["id"], "detail": ""} for c in charges],
        none_text=_t(
            "No active workflow gives store credit. Install the “Refund as store "
            "credit” template (manage.py install_templates); an approver activates it."
        ),
        title=_t("Refund as store credit with which workflow?"),
        intro=_t("Choose the workflow to run on the %(count)d selected charge(s).")
        % {"count": len(selected)},
    )
    if workflow is None:
        return choosing
    token = request.POST.get("kanri_token") or keys.new_request_token()
    planned = store_credit.plan(workflow, charges)
    credited = [row for row in planned["rows"] if row["credit"]]
    result = {}

    def perform():
        result.update(workflows.run_on(workflow, [c["id"] for c in charges], request.user, token))
        return _t("Started %(count)d store credit run(s) of “%(name)s”.") % {
            "count": len(result["started"]),
            "name": workflow.name,
        }

    shown = [c for c in charges if c["id"] in {r["id"] for r in credited}][:SHOWN]
    response = confirm_selected(
        modeladmin,
        request,
        queryset,
        title=_t("Refund %(count)d charge(s) as store credit?") % {"count": len(credited)},
        intro=_t(
            "“%(name)s” will give store credit for %(count)d charge(s): %(totals)s in all, "
            "each recorded as started by you. A charge is credited at most once, whatever "
            "is asked again. Below is what the first %(shown)d would do (nothing has been "
            "sent)."
        )
        % {
            "name": workflow.name,
            "count": len(credited),
            "totals": _totals_text(planned["totals"]),
            "shown": len(shown),
        },
        rows=[_row(r) for r in credited],
        skipped=[_row(r) for r in planned["rows"] if not r["credit"]],
        perform=perform,
        hidden={"workflow": workflow.pk, "kanri_token": token},
        extra={
            "workflow_choices": choices if len(choices) > 1 else [],
            "chosen_workflow": workflow.pk,
            "rehearsals": workflows.rehearse_on(workflow, shown, limit=SHOWN),
            "credit_count": len(credited),
            "credit_totals": planned["totals"],
        },
        confirm_label=_t("Yes, credit %(count)d charge(s)") % {"count": len(credited)},
    )
    if result:
        return HttpResponseRedirect(reverse("kanri_credit:result", args=[result["batch"]]))
    return response


# ------------------------------------------------------------------ the result page


def _charge_admin():
    from djstripe.models import Charge

    return admin.site._registry[Charge]


def _batch(request, batch_id):
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    batch = Batch.objects.select_related("workflow").filter(pk=batch_id).first()
    if batch is None or batch.object_type != store_credit.OBJECT:
        raise Http404
    return batch


def result(request, batch_id):
    """List each charge of a store-credit batch: its credit, status and why."""
    batch = _batch(request, batch_id)
    rows = store_credit.report(batch)
    for row in rows:
        row["status_label"] = str(STATUS_LABELS[row["status"]])
        row["credit_label"] = str(CREDIT_LABELS.get(row["credit_type"], ""))
        row["run_url"] = (
            reverse("admin:automations_run_change", args=[row["run"]]) if row["run"] else ""
        )
    return page(
        _charge_admin(),
        request,
        "admin/kanri/credit/result.html",
        _t("Store credit: “%(name)s”") % {"name": batch.workflow.name},
        rows=rows,
        counts=[
            {"status": s, "label": str(STATUS_LABELS[s]), "count": n}
            for s, n in store_credit.counts(rows).items()
        ],
        summary=store_credit.summary(rows),
        batch={"id": batch.pk, "created_at": batch.created_at},
        csv_url=reverse("kanri_credit:csv", args=[batch.pk]),
        changelist_url=reverse("admin:djstripe_charge_changelist"),
    )


def report_csv(request, batch_id):
    """Download a store-credit batch's report as CSV."""
    batch = _batch(request, batch_id)
    out = io.StringIO()
    store_credit.write_csv(store_credit.report(batch), out)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="store-credit-{batch.pk}.csv"'
    return response


urlpatterns = [
    path("<int:batch_id>/", admin.site.admin_view(result), name="result"),
    path("<int:batch_id>/csv/", admin.site.admin_view(report_csv), name="csv"),
]
