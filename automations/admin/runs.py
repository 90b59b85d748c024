"""The run audit log: lists, each run's attempts, retry, cancel, and decisions on held runs."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from more_admin_filters import MultiSelectFilter

from automations import workflows
from automations.admin.actions import confirm_selected
from automations.admin.base import ReadOnlyAdmin, badge, page
from automations.admin.bookmarks import SavedFiltersMixin
from automations.models import Run, RunStep
from automations.money import format_money
from automations.redaction import redact, redact_data


class RunStatusFilter(MultiSelectFilter):
    """Several statuses at once (`status__in=failed,held`), named in the reader's language."""

    def choices(self, changelist):
        labels = dict(Run.Status.choices)
        for choice in super().choices(changelist):
            yield {**choice, "display": labels.get(choice["display"], choice["display"])}


def _run_row(run):
    return {
        "label": _t("Run %(id)d: %(workflow)s for %(key)s")
        % {"id": run.pk, "workflow": run.workflow.name, "key": run.trigger_key},
        "detail": " · ".join(p for p in (str(run.get_status_display()), run.error) if p),
    }


def _approval(run, user):
    """What a run held above a money cap waits for, in words and money, or None."""
    pending = workflows.pending_approval(run)
    if pending is None or run.hold_reason != Run.HoldReason.APPROVAL:
        return None
    allowed, reason = workflows.can_approve(user, run)
    return {
        "step": pending["step"],
        "money": format_money(pending["amount"], pending["currency"])
        if pending["currency"]
        else _t("an amount Kanri cannot read"),
        "caps": [_cap_text(cap, pending["currency"]) for cap in pending["exceeded"]],
        "can_decide": allowed,
        "reason": workflows.reason_text(reason) if user.has_perm("automations.approve_run") else "",
    }


def _cap_text(cap, currency):
    if cap["cap"] == "amount_unknown":
        return _t("the step's amount or currency cannot be read")
    label = _t("per run") if cap["cap"] == "per_run" else _t("per day")
    if cap["limit"] is None:
        return _t("no cap %(cap)s is set for %(currency)s") % {
            "cap": label,
            "currency": currency.upper(),
        }
    return _t("%(total)s %(cap)s, above the cap of %(limit)s") % {
        "total": format_money(cap["total"], currency),
        "cap": label,
        "limit": format_money(cap["limit"], currency),
    }


def _approval_row(run):
    pending = workflows.pending_approval(run) or {}
    detail = ""
    if pending.get("currency"):
        detail = " · ".join(
            [format_money(pending["amount"], pending["currency"])]
            + [_cap_text(c, pending["currency"]) for c in pending.get("exceeded", [])]
        )
    return {
        "id": str(run.pk),
        "label": _t("Run %(id)d: %(workflow)s for %(key)s")
        % {"id": run.pk, "workflow": run.workflow.name, "key": run.trigger_key},
        "detail": detail or str(run.get_status_display()),
    }


def _runs_action(modeladmin, request, queryset, *, eligible, perform, title, done):
    chosen = list(queryset.select_related("workflow"))
    ready = [run for run in chosen if run.status in eligible]
    return confirm_selected(
        modeladmin,
        request,
        queryset,
        title=title,
        intro=_t("These runs will be changed:")
        if ready
        else _t("None of the selected runs is in a state for this."),
        rows=[_run_row(run) for run in ready],
        skipped=[_run_row(run) for run in chosen if run.status not in eligible],
        perform=lambda: done % {"count": perform([run.pk for run in ready], request.user)},
    )


@admin.register(Run)
class RunAdmin(SavedFiltersMixin, ReadOnlyAdmin):
    list_display = [
        "id",
        "workflow",
        "trigger_kind",
        "event_type",
        "trigger_key",
        "status_badge",
        "attempt",
        "created_at",
        "duration",
    ]
    list_filter = [
        "workflow",
        ("status", RunStatusFilter),
        "hold_reason",
        "trigger_kind",
        "event_type",
        "created_at",
    ]
    search_fields = ["trigger_key", "workflow__name"]
    date_hierarchy = "created_at"
    list_select_related = ["workflow"]
    actions = ["retry_runs", "cancel_runs", "approve_runs", "reject_runs"]

    class Media:
        css = {"all": ["automations/editor.css"]}

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, obj):
        return badge(obj)

    @admin.display(description=_("Took"))
    def duration(self, obj):
        if obj.started_at and obj.finished_at:
            return f"{(obj.finished_at - obj.started_at).total_seconds():.2f} s"
        return "—"

    def has_retry_permission(self, request):
        return request.user.has_perm("automations.retry_run")

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Retry selected failed runs"), permissions=["retry"])
    def retry_runs(self, request, queryset):
        return _runs_action(
            self,
            request,
            queryset,
            eligible={Run.Status.FAILED},
            perform=workflows.retry,
            title=_t("Retry these runs?"),
            done=_t("Retried %(count)d run(s)."),
        )

    @admin.action(description=_("Cancel selected waiting runs"), permissions=["retry"])
    def cancel_runs(self, request, queryset):
        return _runs_action(
            self,
            request,
            queryset,
            eligible=set(Run.WAITING),
            perform=workflows.cancel,
            title=_t("Cancel these runs?"),
            done=_t("Cancelled %(count)d run(s)."),
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/decide/",
                view(self.decide_view),
                name="automations_run_decide",
            ),
            path(
                "<path:object_id>/approve/",
                view(self.approve_view),
                name="automations_run_approve",
            ),
            *super().get_urls(),
        ]

    def has_approve_permission(self, request):
        return request.user.has_perm("automations.approve_run")

    def _approvals_action(self, request, queryset, settle, title, done):
        """Approve or reject held runs, after a page showing what each would move."""
        chosen = list(queryset.select_related("workflow"))
        ready, skipped = [], []
        for run in chosen:
            allowed, reason = workflows.can_approve(request.user, run)
            row = _approval_row(run)
            if allowed:
                ready.append(row)
            else:
                skipped.append({**row, "detail": workflows.reason_text(reason)})
        ids = [int(r["id"]) for r in ready]

        def perform():
            count = sum(settle(run, request.user) for run in Run.objects.filter(pk__in=ids))
            return done % {"count": count}

        return confirm_selected(
            self,
            request,
            queryset,
            title=title,
            intro=_t("Each run below waits for approval: it would move more than its caps allow.")
            if ready
            else _t("None of the selected runs is one you may decide."),
            rows=ready,
            skipped=skipped,
            perform=perform,
        )

    @admin.action(
        description=_("Approve selected runs held above a money cap…"), permissions=["approve"]
    )
    def approve_runs(self, request, queryset):
        return self._approvals_action(
            request,
            queryset,
            workflows.approve,
            _t("Approve these runs?"),
            _t("Approved %(count)d run(s): they go on now."),
        )

    @admin.action(
        description=_("Reject selected runs held above a money cap…"), permissions=["approve"]
    )
    def reject_runs(self, request, queryset):
        return self._approvals_action(
            request,
            queryset,
            workflows.reject,
            _t("Reject these runs?"),
            _t("Rejected %(count)d run(s): nothing was sent."),
        )

    def approve_view(self, request, object_id):
        """An approver decides a run held above a money cap, from its page."""
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404(_t("No such run."))
        decision = request.POST.get("decision")
        if request.method != "POST" or decision not in ("approve", "reject"):
            raise PermissionDenied
        settle = workflows.approve if decision == "approve" else workflows.reject
        try:
            settle(run, request.user)
        except workflows.NotAllowed as e:
            self.message_user(request, e.message, messages.ERROR)
        else:
            text = (
                _t("Approved: the run goes on.")
                if decision == "approve"
                else _t("Rejected: the run is cancelled and nothing was sent.")
            )
            self.message_user(request, text, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:automations_run_change", args=[run.pk]))

    def decide_view(self, request, object_id):
        """A person settles a step whose outcome is unknown: send it again, or skip it."""
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404(_t("No such run."))
        if request.method != "POST" or not self.has_retry_permission(request):
            raise PermissionDenied
        decision = request.POST.get("decision", "")
        if decision not in RunStep.Decision.values:
            raise PermissionDenied
        if workflows.decide(run, request.POST.get("step", ""), decision, request.user):
            self.message_user(request, _t("Done: the run goes on."), messages.SUCCESS)
        else:
            self.message_user(
                request, _t("This run no longer waits on that step."), messages.WARNING
            )
        return HttpResponseRedirect(reverse("admin:automations_run_change", args=[run.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404(_t("No such run."))
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        steps = [
            {
                "name": s.step_name,
                "kind": s.kind,
                "attempt": s.attempt,
                "status": s.status,
                "status_label": str(s.get_status_display()),
                "input": redact_data(s.input),
                "output": redact_data(s.output),
                "error": redact(s.error),
                "idempotency_key": s.idempotency_key,
                "started_at": s.started_at,
                "duration_ms": s.duration_ms,
                "decision": str(s.get_decision_display()) if s.decision else "",
                "decided_by": s.decided_by.get_username() if s.decided_by_id else "",
                "undecided": s.status == RunStep.Status.UNKNOWN and not s.decision,
            }
            for s in run.steps.select_related("decided_by").order_by("pk")
        ]
        return page(
            self,
            request,
            "admin/automations/run/detail.html",
            title=_t("Run %(id)d: %(workflow)s") % {"id": run.pk, "workflow": run.workflow.name},
            run={
                "id": run.pk,
                "workflow": run.workflow.name,
                "workflow_url": reverse(
                    "admin:automations_workflow_change", args=[run.workflow_id]
                ),
                "version": run.version.number,
                "trigger_kind": run.get_trigger_kind_display(),
                "event_type": run.event_type,
                "trigger_key": run.trigger_key,
                "started_by": run.started_by.get_username() if run.started_by_id else "",
                "status": run.status,
                "status_label": run.get_status_display(),
                "hold_reason": run.get_hold_reason_display() if run.hold_reason else "",
                "attempt": run.attempt,
                "error": redact(run.error),
                "created_at": run.created_at,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "next_attempt_at": run.next_attempt_at,
                "trigger_data": redact_data(run.trigger_data),
            },
            steps=steps,
            can_decide=run.status == Run.Status.HELD and self.has_retry_permission(request),
            decide_url=reverse("admin:automations_run_decide", args=[run.pk]),
            approval=_approval(run, request.user),
            approve_url=reverse("admin:automations_run_approve", args=[run.pk]),
        )
