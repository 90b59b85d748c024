"""The admin: the workflow editor, previews, activation, version history, the run audit
log and the inventory. Template contexts hold plain dicts, never model instances."""

import json
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Max, Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from djstripe.models import Event

from automations import catalog, definitions
from automations.editor import (
    ConditionForm,
    ConditionFormSet,
    StepForm,
    StepFormSet,
    WorkflowEditor,
    config_fieldsets,
)
from automations.engine import runner
from automations.models import Condition, Run, Step, Workflow, WorkflowVersion
from automations.preview import event_payload, preview
from integrations.registry import ACTIONS, get_action

MONEY_WARNING = "This workflow moves money (it refunds or credits): an approver must activate it."


def can_activate(user, definition):
    """Return (allowed, reason) for activating a workflow with this definition."""
    if not user.has_perm("automations.activate_workflow"):
        return False, "You may not activate or pause workflows."
    if definitions.moves_money(definition) and not user.has_perm(
        "automations.approve_money_workflow"
    ):
        return False, MONEY_WARNING
    return True, ""


def providers(definition):
    """Return the external systems a definition's steps touch, e.g. ["Email", "Stripe"]."""
    kinds = {s["kind"] for s in definitions.iter_steps(definition.get("steps") or [])}
    return sorted({get_action(kind).provider for kind in kinds if kind in ACTIONS})


def page(model_admin, request, template, title, **context):
    """Render one of Kanri's own admin pages: the admin's chrome plus plain dicts."""
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": title,
            **context,
        },
    )


def badge(obj):
    """A workflow's or run's status as a coloured label."""
    return format_html(
        '<span class="kanri-status kanri-{}">{}</span>', obj.status, obj.get_status_display()
    )


def editor_catalog():
    """Return the field catalog as plain lists for the editor's script (references and
    condition fields for steps that are not saved yet)."""
    prefix = len("steps.x.")
    return {
        "event_objects": {t: spec["object"] for t, spec in catalog.EVENT_TYPES.items()},
        "event_fields": [[f["path"], f["label"], f["type"]] for f in catalog.trigger_fields("")],
        "object_fields": {
            name: [[f["name"], f["label"], f["type"]] for f in fields]
            for name, fields in catalog.OBJECT_FIELDS.items()
        },
        "outputs": {
            kind: [
                [f["path"][prefix:], f["label"][len("x: ") :], f["type"]]
                for f in catalog.step_fields("x", kind)
            ]
            for kind in ACTIONS
        },
    }


class WorkflowForm(forms.ModelForm):
    event_type = forms.ChoiceField(
        label="Trigger",
        choices=lambda: [("", "---------"), *catalog.event_type_choices()],
        help_text="The Stripe event that starts a run.",
    )

    class Meta:
        model = Workflow
        fields = ["name", "description", "owner", "event_type"]


class ConditionInline(admin.TabularInline):
    model = Condition
    form = ConditionForm
    formset = ConditionFormSet
    extra = 0
    fields = ["scope", "group", "field", "operator", "value_text", "currency"]
    verbose_name_plural = "Conditions (same group: all must hold; any group will do)"


class StepInline(admin.StackedInline):
    model = Step
    fk_name = "workflow"
    form = StepForm
    formset = StepFormSet
    extra = 0
    verbose_name_plural = "Steps (in order; drag with ↑ ↓)"

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": [("name", "kind", "placement"), "position"]}),
            *config_fieldsets(),
        ]


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    form = WorkflowForm
    list_display = ["name", "event_type", "status_badge", "owner", "version_number", "updated_at"]
    list_filter = ["status", "event_type", "owner"]
    search_fields = ["name", "description"]
    list_select_related = ["owner", "active_version"]
    inlines = [ConditionInline, StepInline]
    actions = ["pause_selected"]
    change_form_template = "admin/automations/workflow/change_form.html"
    change_list_template = "admin/automations/workflow/change_list.html"

    class Media:
        css = {"all": ["automations/editor.css"]}
        js = ["automations/editor.js"]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj)

    @admin.display(description="Active version", ordering="active_version__number")
    def version_number(self, obj):
        return f"v{obj.active_version.number}" if obj.active_version_id else "—"

    def get_inlines(self, request, obj):
        # People who may only look read the whole definition instead (see `definition`).
        return self.inlines if self.has_change_permission(request, obj) else []

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return ["definition"]
        return []

    @admin.display(description="What it does (draft)")
    def definition(self, obj):
        return format_html(
            '<pre class="kanri-json">{}</pre>',
            json.dumps(definitions.snapshot(obj), indent=2, ensure_ascii=False),
        )

    def has_activate_permission(self, request):
        return request.user.has_perm("automations.activate_workflow")

    @admin.action(description="Pause selected workflows", permissions=["activate"])
    def pause_selected(self, request, queryset):
        for workflow in queryset.filter(status=Workflow.Status.ACTIVE):
            definitions.pause(workflow)
            self.log_change(request, workflow, "Paused.")
        self.message_user(request, "Paused the selected active workflows.")

    # ------------------------------------------------------------ editing

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        editor = getattr(request, "_kanri_editor", None)
        if editor is None or editor.workflow is not obj:
            data = request.POST if request.method == "POST" else None
            editor = request._kanri_editor = WorkflowEditor(obj, data)
        kwargs["editor"] = editor
        return kwargs

    def save_model(self, request, obj, form, change):
        if not change and obj.owner_id is None:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        """Save steps, then place them (parents by name), then conditions (branch by name)."""
        form.save_m2m()
        by_role = {formset.role: formset for formset in formsets}
        steps, conditions = by_role["steps"], by_role["conditions"]
        placements = steps.editor.placements()
        steps.save(commit=False)
        for obj in steps.deleted_objects:
            obj.delete()
        for step_form in steps.live_forms():
            step_form.save()
        rows = {row.name: row for row in form.instance.steps.all()}
        for name, (parent, arm, position) in placements.items():
            row = rows[name]
            wanted = (rows[parent].pk if parent else None, arm if parent else "", position)
            if (row.parent_id, row.arm, row.position) != wanted:
                row.parent_id, row.arm, row.position = wanted
                row.save(update_fields=["parent", "arm", "position"])
        conditions.save(commit=False)
        for obj in conditions.deleted_objects:
            obj.delete()
        for position, condition_form in enumerate(conditions.live_forms()):
            condition = condition_form.save(commit=False)
            condition.workflow = form.instance
            condition.step = rows.get(condition_form.cleaned_data.get("scope") or "")
            condition.value = condition_form.value
            condition.position = position
            condition.save()

    def add_view(self, request, form_url="", extra_context=None):
        extra = {**(extra_context or {}), "kanri_catalog": editor_catalog()}
        return super().add_view(request, form_url, extra)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        workflow = self.get_object(request, unquote(object_id))
        extra = {**(extra_context or {}), "kanri_catalog": editor_catalog()}
        if workflow is not None:
            extra["kanri"] = self.status_context(request, workflow)
        return super().change_view(request, object_id, form_url, extra)

    def status_context(self, request, workflow):
        draft = definitions.snapshot(workflow)
        active = workflow.active_version.definition if workflow.active_version_id else None
        try:
            draft_clean = definitions.validate(draft)
            draft_errors = []
        except ValidationError as e:
            draft_clean, draft_errors = draft, e.messages
        allowed, reason = can_activate(request.user, draft)
        return {
            "status": workflow.status,
            "status_label": workflow.get_status_display(),
            "active_version": workflow.active_version.number if active else None,
            "unactivated_changes": active is not None and active != draft_clean,
            "draft_errors": draft_errors,
            "moves_money": definitions.moves_money(draft),
            "can_activate": allowed,
            "can_preview": self.has_change_permission(request, workflow),
            "activate_reason": reason,
            "providers": providers(draft),
        }

    # ------------------------------------------------------------ extra pages

    def get_urls(self):
        view = self.admin_site.admin_view
        info = "automations_workflow"
        return [
            path("inventory/", view(self.inventory_view), name=f"{info}_inventory"),
            path("<path:object_id>/preview/", view(self.preview_view), name=f"{info}_preview"),
            path("<path:object_id>/activate/", view(self.activate_view), name=f"{info}_activate"),
            path("<path:object_id>/pause/", view(self.pause_view), name=f"{info}_pause"),
            path("<path:object_id>/versions/", view(self.versions_view), name=f"{info}_versions"),
            path(
                "<path:object_id>/restore/<int:number>/",
                view(self.restore_view),
                name=f"{info}_restore",
            ),
            *super().get_urls(),
        ]

    def _workflow(self, request, object_id, permission):
        workflow = self.get_object(request, unquote(object_id))
        if workflow is None:
            raise Http404("No such workflow.")
        if not permission(request, workflow):
            raise PermissionDenied
        return workflow

    def _page(self, request, workflow, template, **context):
        return page(
            self,
            request,
            template,
            workflow={
                "id": workflow.pk,
                "name": workflow.name,
                "event_type": workflow.event_type,
                "status": workflow.get_status_display(),
            },
            change_url=reverse("admin:automations_workflow_change", args=[workflow.pk]),
            **context,
        )

    def preview_view(self, request, object_id):
        workflow = self._workflow(request, object_id, self.has_change_permission)
        draft = definitions.snapshot(workflow)
        events = list(
            Event.objects.filter(type=workflow.event_type)
            .order_by("-created")
            .values_list("id", "created")[:20]
        )
        chosen = request.GET.get("event") or (events[0][0] if events else "")
        result, errors, missing = None, [], False
        try:
            draft = definitions.validate(draft)
        except ValidationError as e:
            errors = e.messages
        if chosen and not errors:
            stored = Event.objects.filter(id=chosen).first()
            if stored is None:
                missing = True
            else:
                result = preview(draft, event_payload(stored), workflow)
        return self._page(
            request,
            workflow,
            "admin/automations/workflow/preview.html",
            title=f"Preview: {workflow.name}",
            events=[{"id": event_id, "created": created} for event_id, created in events],
            chosen=chosen,
            result=result,
            errors=errors,
            missing=missing,
        )

    def activate_view(self, request, object_id):
        workflow = self._workflow(request, object_id, self.has_change_permission)
        draft = definitions.snapshot(workflow)
        allowed, reason = can_activate(request.user, draft)
        if not allowed:
            raise PermissionDenied(reason)
        active = workflow.active_version.definition if workflow.active_version_id else None
        try:
            draft = definitions.validate(draft)
            errors = []
        except ValidationError as e:
            errors = e.messages
        if request.method == "POST" and not errors:
            version = definitions.activate(workflow, request.user)
            self.log_change(request, workflow, f"Activated version {version.number}.")
            self.message_user(request, f"“{workflow.name}” is active (version {version.number}).")
            return HttpResponseRedirect(
                reverse("admin:automations_workflow_change", args=[workflow.pk])
            )
        return self._page(
            request,
            workflow,
            "admin/automations/workflow/activate.html",
            title=f"Activate {workflow.name}?",
            errors=errors,
            diff=definitions.diff(active, draft),
            moves_money=definitions.moves_money(draft),
            providers=providers(draft),
        )

    def pause_view(self, request, object_id):
        workflow = self._workflow(request, object_id, self.has_change_permission)
        if not self.has_activate_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            definitions.pause(workflow)
            self.log_change(request, workflow, "Paused.")
            self.message_user(request, f"“{workflow.name}” is paused: no new runs start.")
        return HttpResponseRedirect(
            reverse("admin:automations_workflow_change", args=[workflow.pk])
        )

    def versions_view(self, request, object_id):
        workflow = self._workflow(request, object_id, self.has_view_permission)
        versions = list(workflow.versions.order_by("number").select_related("created_by"))
        rows, previous = [], None
        for version in versions:
            rows.append(
                {
                    "number": version.number,
                    "created_at": version.created_at,
                    "created_by": version.created_by.get_username() if version.created_by else "—",
                    "active": version.pk == workflow.active_version_id,
                    "diff": definitions.diff(previous, version.definition),
                }
            )
            previous = version.definition
        from django.contrib.admin.models import LogEntry
        from django.contrib.contenttypes.models import ContentType

        log = (
            LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(Workflow), object_id=str(workflow.pk)
            )
            .select_related("user")
            .order_by("-action_time")[:50]
        )
        return self._page(
            request,
            workflow,
            "admin/automations/workflow/versions.html",
            title=f"History: {workflow.name}",
            versions=list(reversed(rows)),
            unactivated=definitions.diff(previous, definitions.snapshot(workflow))
            if versions
            else [],
            log=[
                {
                    "when": e.action_time,
                    "who": e.user.get_username(),
                    "what": e.get_change_message() or e.get_action_flag_display(),
                }
                for e in log
            ],
            can_restore=self.has_change_permission(request, workflow),
        )

    def restore_view(self, request, object_id, number):
        workflow = self._workflow(request, object_id, self.has_change_permission)
        version = get_object_or_404(WorkflowVersion, workflow=workflow, number=number)
        if request.method == "POST":
            definitions.restore(workflow, version.definition)
            self.log_change(request, workflow, f"Draft restored from version {number}.")
            self.message_user(
                request, f"The draft is now version {number} again; activate it to use it."
            )
        return HttpResponseRedirect(
            reverse("admin:automations_workflow_change", args=[workflow.pk])
        )

    def inventory_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        since = timezone.now() - timedelta(days=30)
        finished = Q(runs__created_at__gte=since, runs__status__in=Run.FINISHED)
        workflows = (
            Workflow.objects.select_related("owner", "active_version")
            .annotate(
                last_run_at=Max("runs__created_at"),
                finished_runs=Count("runs", filter=finished),
                failed_runs=Count("runs", filter=finished & Q(runs__status=Run.Status.FAILED)),
            )
            .order_by("name")
        )
        last_status = dict(
            Run.objects.filter(
                pk__in=Run.objects.values("workflow").annotate(last=Max("pk")).values("last")
            ).values_list("workflow_id", "status")
        )
        drafts = definitions.snapshots(workflows)
        rows = []
        for workflow in workflows:
            definition = (
                workflow.active_version.definition
                if workflow.active_version_id
                else drafts[workflow.pk]
            )
            finished_count = workflow.finished_runs
            rows.append(
                {
                    "id": workflow.pk,
                    "url": reverse("admin:automations_workflow_change", args=[workflow.pk]),
                    "name": workflow.name,
                    "trigger": catalog.EVENT_TYPES.get(workflow.event_type, {}).get(
                        "label", workflow.event_type
                    ),
                    "event_type": workflow.event_type,
                    "actions": [
                        get_action(s["kind"]).label
                        for s in definitions.iter_steps(definition.get("steps") or [])
                        if s["kind"] in ACTIONS
                    ],
                    "providers": providers(definition),
                    "moves_money": definitions.moves_money(definition),
                    "owner": workflow.owner.get_username() if workflow.owner_id else "—",
                    "status": workflow.get_status_display(),
                    "status_key": workflow.status,
                    "version": workflow.active_version.number
                    if workflow.active_version_id
                    else None,
                    "last_run_at": workflow.last_run_at,
                    "last_run_status": last_status.get(workflow.pk, ""),
                    "runs_30d": finished_count,
                    "failure_rate": (workflow.failed_runs / finished_count)
                    if finished_count
                    else None,
                }
            )
        return page(
            self,
            request,
            "admin/automations/inventory.html",
            title="Inventory: what automates what",
            rows=rows,
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit log: staff read it; only the engine writes it."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdmin):
    list_display = ["workflow", "number", "created_by", "created_at"]
    list_filter = ["workflow"]


class RunStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status__in"

    def lookups(self, request, model_admin):
        return Run.Status.choices

    def queryset(self, request, queryset):
        values = [v for v in (self.value() or "").split(",") if v]
        return queryset.filter(status__in=values) if values else queryset


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "workflow",
        "event_type",
        "trigger_key",
        "status_badge",
        "attempt",
        "created_at",
        "duration",
    ]
    list_filter = ["workflow", RunStatusFilter, "event_type", "created_at"]
    search_fields = ["trigger_key", "workflow__name"]
    date_hierarchy = "created_at"
    list_select_related = ["workflow"]
    actions = ["retry_runs", "cancel_runs"]

    class Media:
        css = {"all": ["automations/editor.css"]}

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj)

    @admin.display(description="Took")
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

    def _confirm(self, request, queryset, *, action, verb, eligible, perform):
        """Two steps, like delete_selected: list what will happen, then do it on "yes"."""
        chosen = list(queryset.select_related("workflow"))
        ready = [run for run in chosen if run.status in eligible]
        if request.POST.get("post") == "yes":
            done = perform([run.pk for run in ready])
            self.message_user(request, f"{verb} {done} run(s).")
            for run in ready:
                self.log_change(request, run, f"{verb}.")
            return None
        return page(
            self,
            request,
            "admin/automations/run/confirm_action.html",
            title=f"{verb} these runs?",
            action=action,
            verb=verb,
            ready=[self._run_row(run) for run in ready],
            skipped=[self._run_row(run) for run in chosen if run.status not in eligible],
            selected=[run.pk for run in chosen],
            action_checkbox_name=admin.helpers.ACTION_CHECKBOX_NAME,
        )

    @staticmethod
    def _run_row(run):
        return {
            "id": run.pk,
            "workflow": run.workflow.name,
            "trigger_key": run.trigger_key,
            "status": run.get_status_display(),
            "error": run.error,
        }

    @admin.action(description="Retry selected failed runs", permissions=["retry"])
    def retry_runs(self, request, queryset):
        return self._confirm(
            request,
            queryset,
            action="retry_runs",
            verb="Retried",
            eligible={Run.Status.FAILED},
            perform=runner.retry_failed,
        )

    @admin.action(description="Cancel selected waiting runs", permissions=["retry"])
    def cancel_runs(self, request, queryset):
        return self._confirm(
            request,
            queryset,
            action="cancel_runs",
            verb="Cancelled",
            eligible={Run.Status.QUEUED, Run.Status.RETRYING},
            perform=runner.cancel,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404("No such run.")
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        steps = [
            {
                "name": s.step_name,
                "kind": s.kind,
                "attempt": s.attempt,
                "status": s.status,
                "status_label": s.get_status_display(),
                "input": s.input,
                "output": s.output,
                "error": s.error,
                "idempotency_key": s.idempotency_key,
                "started_at": s.started_at,
                "duration_ms": s.duration_ms,
            }
            for s in run.steps.order_by("pk")
        ]
        return page(
            self,
            request,
            "admin/automations/run/detail.html",
            title=f"Run {run.pk}: {run.workflow.name}",
            run={
                "id": run.pk,
                "workflow": run.workflow.name,
                "workflow_url": reverse(
                    "admin:automations_workflow_change", args=[run.workflow_id]
                ),
                "version": run.version.number,
                "event_type": run.event_type,
                "trigger_key": run.trigger_key,
                "status": run.status,
                "status_label": run.get_status_display(),
                "attempt": run.attempt,
                "error": run.error,
                "created_at": run.created_at,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "next_attempt_at": run.next_attempt_at,
                "trigger_data": run.trigger_data,
            },
            steps=steps,
        )
