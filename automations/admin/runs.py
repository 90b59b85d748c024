"""The run audit log: lists, each run's attempts, retry, cancel, and decisions on held runs."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from automations import workflows
from automations.admin.actions import confirm_selected
from automations.admin.base import ReadOnlyAdmin, badge, page
from automations.models import Run, RunStep


class RunStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status__in"

    def lookups(self, request, model_admin):
        return Run.Status.choices

    def queryset(self, request, queryset):
        values = [v for v in (self.value() or "").split(",") if v]
        return queryset.filter(status__in=values) if values else queryset


def _run_row(run):
    return {
        "label": _t("Run %(id)d: %(workflow)s for %(key)s")
        % {"id": run.pk, "workflow": run.workflow.name, "key": run.trigger_key},
        "detail": " · ".join(p for p in (str(run.get_status_display()), run.error) if p),
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
class RunAdmin(ReadOnlyAdmin):
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
    list_filter = ["workflow", RunStatusFilter, "trigger_kind", "event_type", "created_at"]
    search_fields = ["trigger_key", "workflow__name"]
    date_hierarchy = "created_at"
    list_select_related = ["workflow"]
    actions = ["retry_runs", "cancel_runs"]

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
            *super().get_urls(),
        ]

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
                "input": s.input,
                "output": s.output,
                "error": s.error,
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
                "error": run.error,
                "created_at": run.created_at,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "next_attempt_at": run.next_attempt_at,
                "trigger_data": run.trigger_data,
            },
            steps=steps,
            can_decide=run.status == Run.Status.HELD and self.has_retry_permission(request),
            decide_url=reverse("admin:automations_run_decide", args=[run.pk]),
        )
