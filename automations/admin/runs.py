"""The run audit log: lists, each run's attempts, retry, cancel, and decisions on held runs."""

import json

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from automations import catalog, workflows
from automations.admin import readable, run_page
from automations.admin.actions import confirm_selected
from automations.admin.base import ReadOnlyAdmin, badge, page
from automations.admin.bookmarks import SavedFiltersMixin
from automations.admin.filters import status_filter
from automations.models import Run, RunStep
from automations.money import format_money
from automations.redaction import redact, redact_data

# Several statuses at once (`status__in=failed,held`), named in the reader's language; the
# choices are the model's, not a DISTINCT over a million runs on every page.
RunStatusFilter = status_filter(Run.Status.choices, field="status")


class EventTypeFilter(admin.SimpleListFilter):
    """`?event_type=payment_intent.succeeded`, its choices from the catalog (no DISTINCT)."""

    title = _("event type")
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return sorted(
            ((key, info["label"]) for key, info in catalog.EVENT_TYPES.items()),
            key=lambda choice: choice[1],
        )

    def queryset(self, request, queryset):
        # Any value filters, listed or not: a saved filter may name a type since retired.
        return queryset.filter(event_type=self.value()) if self.value() else queryset


class RunPaginator(Paginator):
    """Pages of the run list that stay fast at a million runs.

    - The count: unfiltered on PostgreSQL, the planner's estimate (pg_class.reltuples), as
      an exact count(*) reads every row; otherwise a count capped at COUNT_CAP + 1 rows,
      and past the cap the planner's estimate for the filtered query.
    - A page: its primary keys first (an index-only range of the ordering index, so
      OFFSET skips index entries, not rows), then those rows by key.
    - Only the listed columns: the trigger's data (the whole event) is never loaded.
    """

    COUNT_CAP = 10_000

    def __init__(self, object_list, *args, **kwargs):
        super().__init__(object_list.only(*Run.LIST_FIELDS, "workflow__name"), *args, **kwargs)

    @cached_property
    def count(self):
        queryset = self.object_list
        postgres = connection.vendor == "postgresql"
        if postgres and not queryset.query.where:
            estimate = _table_estimate(Run._meta.db_table)
            if estimate > self.COUNT_CAP:
                return estimate
        capped = queryset.order_by()[: self.COUNT_CAP + 1].count()
        if capped > self.COUNT_CAP and postgres:
            return max(capped, _query_estimate(queryset.order_by().values("pk")))
        return capped

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        keys = list(self.object_list.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        return self._get_page(self.object_list.filter(pk__in=keys), number, self)


class RunChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        # A list that fits on one page skips the paginator's page(): defer the JSON here too.
        self.result_list = self.result_list.only(*Run.LIST_FIELDS, "workflow__name")


def _table_estimate(table):
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    return row[0] if row else -1


def _query_estimate(queryset):
    """The planner's row estimate for a query (EXPLAIN, nothing executed)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


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
        RunStatusFilter,
        "hold_reason",
        "trigger_kind",
        EventTypeFilter,
        "created_at",
    ]
    search_fields = ["trigger_key", "workflow__name"]
    list_select_related = ["workflow"]
    # At a million runs: no second, unfiltered count(*), no per-choice facet counts, and
    # no date hierarchy (its links are a DISTINCT over every run's month or day); the
    # created-at filter offers the same periods.
    paginator = RunPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

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

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # The history page pages LogEntry rows through this same hook: Run's paginator
        # (which asks for Run's columns) would fail there with a 500.
        kind = self.paginator if queryset.model is Run else Paginator
        return kind(queryset, per_page, orphans, allow_empty_first_page)

    def get_changelist(self, request, **kwargs):
        return RunChangeList

    def action_checkbox(self, obj):
        # Django's markup, as a string: rendering the widget's template costs more than
        # the whole page's SQL at a hundred rows.
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            format_html(_t("Select this object for an action - {}"), str(obj)),
        )

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
        # A page to read, never a form to save: the audit is written by the engine only.
        if request.method == "POST" or not self.has_view_permission(request, run):
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
                "trigger_data": redact_data(run.snapshot),
                "trigger_lines": readable.json_lines(redact_data(run.snapshot)),
            },
            steps=steps,
            timeline=run_page.timeline(run),
            can_decide=run.status == Run.Status.HELD and self.has_retry_permission(request),
            decide_url=reverse("admin:automations_run_decide", args=[run.pk]),
            approval=_approval(run, request.user),
            approve_url=reverse("admin:automations_run_approve", args=[run.pk]),
        )
