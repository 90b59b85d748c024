"""The workflow admin: the editor, previews, activation, version history and the inventory.

A screen for automations/workflows.py: every rule lives in the service; this module
turns requests into service calls and results into pages. Template contexts hold plain
dicts, never model instances.
"""

import json
from datetime import UTC, datetime, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext

from automations import catalog, definition, replays, templates, workflows
from automations.admin import readable, run_page
from automations.admin.base import ReadOnlyAdmin, badge, page
from automations.admin.editor import (
    LIMIT_FIELDS,
    SCHEDULE_FIELDS,
    ConditionForm,
    ConditionFormSet,
    ScheduleFields,
    StepForm,
    StepFormSet,
    WorkflowEditor,
    config_fieldsets,
    format_caps,
    next_runs,
    parse_trigger,
    references_for,
    trigger_choices,
    trigger_value,
)
from automations.models import Condition, Step, TriggerKind, Workflow, WorkflowVersion
from automations.money import format_money
from automations.problems import InvalidDefinition, message
from automations.redaction import redact_data
from integrations.email_actions import email_rows
from integrations.registry import ACTIONS, get_action


class WorkflowForm(ScheduleFields, forms.ModelForm):
    # Not a model field: the service writes the trigger's columns with the rest of the draft.
    trigger = forms.ChoiceField(
        label=_("Trigger"),
        choices=trigger_choices,
        help_text=_(
            "A Stripe event, staff running it on Stripe objects they select, or a schedule "
            "over a saved filter."
        ),
    )

    # Money caps, one "1,000 USD" per line; required when a step moves money.
    per_run = forms.CharField(
        label=_("Money cap per run"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 24}),
        help_text=_(
            "For workflows that refund or credit: the most one run may move, one currency "
            "per line (“1,000 USD”). Above it, the run waits for an approver."
        ),
    )
    per_day = forms.CharField(
        label=_("Money cap per day"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 24}),
        help_text=_("The most all its runs may move in one day, one currency per line."),
    )

    class Meta:
        model = Workflow
        fields = ["name", "description", "owner", "failure_alerts", "alert_channel"]

    def clean(self):
        data = super().clean()
        # Left out of a form (an older page, a script): the workflow keeps its setting.
        data["failure_alerts"] = data.get("failure_alerts") or self.instance.failure_alerts
        if data.get("failure_alerts") == "slack" and not (data.get("alert_channel") or "").strip():
            self.add_error("alert_channel", _("Say which Slack channel the alerts go to."))
        return data

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "failure_alerts" in self.fields:
            self.fields["failure_alerts"].required = False
        if self.instance.pk:
            self.initial.setdefault("trigger", trigger_value(definition.trigger_of(self.instance)))
            for cap in LIMIT_FIELDS:
                self.initial.setdefault(cap, format_caps((self.instance.limits or {}).get(cap)))


class BacktestForm(forms.Form):
    days = forms.IntegerField(
        label=_("Last N days"),
        min_value=1,
        max_value=90,
        initial=7,
        help_text=_("Stored Stripe events created in this many days up to now."),
    )


# The backtest page lists this many matched events; the counts cover them all.
BACKTEST_SHOWN = 100


def backtest_context(report):
    """Return a backtest report as the page shows it: words, money and plain rows."""
    events = [
        {
            "id": event["id"],
            "type": event["type"],
            "created": datetime.fromtimestamp(event["created"], tz=UTC)
            if isinstance(event.get("created"), int)
            else None,
            "halted": event["halted"],
            "steps": [
                {**step, "request_lines": readable.json_lines(step.get("request"))}
                for step in redact_data(event["steps"])
            ],
        }
        for event in report["events"][:BACKTEST_SHOWN]
    ]
    return {
        "considered": report["considered"],
        "matched": report["matched"],
        "own": report["own"],
        "halted": report["halted"],
        "money": replays.format_amounts(report["money"]) if report["money"] else "",
        "money_lines": replays.money_lines(report),
        "branches": [
            {"name": name, "then": arms["then"], "else": arms["else"]}
            for name, arms in report["branches"].items()
        ],
        "events": events,
        "more": max(0, len(report["events"]) - BACKTEST_SHOWN),
    }


# ------------------------------------------------------------------ the steps as a tree


def _condition_rows(groups, labels):
    rows = []
    for number, group in enumerate(groups if isinstance(groups, list) else [], start=1):
        for condition in group if isinstance(group, list) else []:
            if not isinstance(condition, dict):
                continue
            field = str(condition.get("field", ""))
            test = readable.condition_test(condition)
            rows.append(
                {"group": number, "field": field, "label": labels.get(field, ""), "test": test}
            )
    return rows


def _summary(kind, config):
    """Return the few settings that say what a step does: [(label, value)]."""
    config = config if isinstance(config, dict) else {}
    if kind == "email.send":
        to = config.get("to") if config.get("recipient") != "customer" else config.get("customer")
        rows = [
            (pgettext("email header", "To"), to or ""),
            (pgettext("email header", "Subject"), config.get("subject") or ""),
        ]
        if config.get("fields"):
            rows.append((_t("Rows"), ", ".join(r["label"] for r in email_rows(config["fields"]))))
        return rows
    if kind == "slack.post_message":
        return [
            (_t("Channel"), config.get("channel") or ""),
            (_t("Text"), config.get("text") or ""),
        ]
    shown = []
    for key, value in config.items():
        if key.endswith("_currency") or value in (None, "", [], {}):
            continue
        currency = config.get(f"{key}_currency")
        if currency and isinstance(value, int) and not isinstance(value, bool):
            value = format_money(value, currency)
        elif not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False)
        shown.append((key.replace("_", " ").capitalize(), value))
    return shown[:4]


def _tree(steps, labels):
    nodes = []
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict):
            continue
        kind = step.get("kind", "")
        node = {
            "name": step.get("name", ""),
            "kind": kind,
            "label": str(get_action(kind).label) if kind in ACTIONS else kind,
            "summary": _summary(kind, step.get("config")),
            "conditions": [],
            "arms": [],
        }
        if kind == Step.BRANCH:
            node["label"] = _t("Branch")
            node["conditions"] = _condition_rows(step.get("conditions"), labels)
            node["arms"] = [
                {"key": arm, "label": str(label), "steps": _tree(step.get(arm), labels)}
                for arm, label in (("then", Step.Arm.THEN.label), ("else", Step.Arm.ELSE.label))
            ]
        nodes.append(node)
    return nodes


def workflow_tree(data):
    """Return a definition as the workflow page draws it: the trigger, its conditions, and
    the steps as a tree whose branches carry their own conditions and two arms."""
    trigger = data.get("trigger") or {}
    labels = {}
    try:
        labels = {f["path"]: str(f["label"]) for f in catalog.fields_for(trigger)}
    except (KeyError, TypeError, ValueError):
        labels = {}
    return {
        "trigger": workflows.trigger_label(trigger),
        "conditions": _condition_rows(data.get("conditions"), labels),
        "steps": _tree(data.get("steps"), labels),
    }


class ConditionInline(admin.TabularInline):
    model = Condition
    form = ConditionForm
    formset = ConditionFormSet
    extra = 0
    fields = ["scope", "group", "field", "operator", "value_text", "currency"]
    verbose_name_plural = _("Conditions (same group: all must hold; any group will do)")


class StepInline(admin.StackedInline):
    model = Step
    fk_name = "workflow"
    form = StepForm
    formset = StepFormSet
    extra = 0
    verbose_name_plural = _("Steps (in order; move with ↑ ↓)")

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": [("name", "kind", "placement"), "position"]}),
            *config_fieldsets(),
        ]


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    form = WorkflowForm
    list_display = [
        "name",
        "trigger_label",
        "status_badge",
        "owner",
        "version_number",
        "updated_at",
    ]
    list_filter = ["status", "trigger_kind", "event_type", "owner"]
    search_fields = ["name", "description"]
    list_select_related = ["owner", "active_version"]
    inlines = [ConditionInline, StepInline]
    actions = ["pause_selected"]
    change_form_template = "admin/automations/workflow/change_form.html"
    change_list_template = "admin/automations/workflow/change_list.html"

    class Media:
        css = {"all": ["automations/editor.css"]}
        js = ["automations/editor.js"]

    @admin.display(description=_("Trigger"))
    def trigger_label(self, obj):
        return workflows.trigger_label(definition.trigger_of(obj))

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, obj):
        return badge(obj)

    @admin.display(description=_("Active version"), ordering="active_version__number")
    def version_number(self, obj):
        return f"v{obj.active_version.number}" if obj.active_version_id else "—"

    def get_inlines(self, request, obj):
        # People who may only look read the whole definition instead (see `definition`).
        return self.inlines if self.has_change_permission(request, obj) else []

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return ["definition"]
        return []

    def get_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return ["name", "description", "owner", "failure_alerts", "definition"]
        return [
            "name",
            "description",
            "owner",
            ("failure_alerts", "alert_channel"),
            "trigger",
            *SCHEDULE_FIELDS,
            *LIMIT_FIELDS,
        ]

    @admin.display(description=_("What it does (draft)"))
    def definition(self, obj):
        return render_to_string(
            "admin/automations/workflow/_tree.html", {"tree": workflow_tree(workflows.draft(obj))}
        )

    def has_activate_permission(self, request):
        return request.user.has_perm("automations.activate_workflow")

    @admin.action(description=_("Pause selected workflows"), permissions=["activate"])
    def pause_selected(self, request, queryset):
        paused = 0
        for workflow in queryset:
            allowed, reason = workflows.can_pause(request.user, workflow)
            if not allowed:  # a money-moving one, for an editor: said, and left running
                self.message_user(
                    request, f"{workflow.name}: {workflows.reason_text(reason)}", messages.ERROR
                )
                continue
            paused += workflows.pause(workflow, request.user)
        self.message_user(request, _t("Paused %(count)d workflow(s).") % {"count": paused})

    def has_delete_permission(self, request, obj=None):
        # The service decides (never-activated drafts; money-moving ones by an approver):
        # the delete page, the bulk delete and the button obey it alike.
        if obj is not None:
            return workflows.can_delete(request.user, obj)[0]
        return super().has_delete_permission(request, obj)

    # ------------------------------------------------------------ editing

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)

        class EditorWorkflowForm(form_class):
            # The editor puts trigger and name problems on this form; Django builds it
            # before the inline formsets, which create the editor.
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                self.offer_filters(request.user)
                request._kanri_workflow_form = self

        return EditorWorkflowForm

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        editor = getattr(request, "_kanri_editor", None)
        if editor is None or editor.workflow is not obj:
            data = request.POST if request.method == "POST" else None
            editor = request._kanri_editor = WorkflowEditor(
                obj, data, getattr(request, "_kanri_workflow_form", None)
            )
        kwargs["editor"] = editor
        return kwargs

    def delete_model(self, request, obj):
        # Through the service: only never-activated drafts, and money ones by an approver.
        workflows.delete(obj, request.user, log=False)  # the delete page logs it

    def delete_queryset(self, request, queryset):
        for workflow in queryset:
            workflows.delete(workflow, request.user, log=False)

    def save_model(self, request, obj, form, change):
        if not change and obj.owner_id is None:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        """Save the draft through the service, which validates it once more."""
        form.save_m2m()
        editor = request._kanri_editor
        try:
            workflows.save_draft(form.instance, editor.definition, request.user)
        except InvalidDefinition as e:  # the editor showed these already; never half-save
            raise PermissionDenied("; ".join(message(p) for p in e.problems)) from e

    def construct_change_message(self, request, form, formsets, add=False):
        # The service rewrites the draft's rows, so the inline formsets saved nothing.
        return super().construct_change_message(request, form, [], add)

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, {**(extra_context or {}), **self._urls()})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        workflow = self.get_object(request, unquote(object_id))
        extra = {**(extra_context or {}), **self._urls()}
        if workflow is not None:
            state = workflows.status(workflow, request.user)
            extra["kanri"] = {
                **{k: v for k, v in state.items() if k != "problems"},
                "draft_errors": [str(p) for p in state["problems"]],
                "activate_reason": workflows.reason_text(state["activate_reason"]),
                "can_preview": self.has_change_permission(request, workflow),
                "tree": workflow_tree(workflows.draft(workflow)),
            }
            trigger = definition.trigger_of(workflow)
            if trigger["kind"] == TriggerKind.SCHEDULE:
                extra["kanri"]["schedule"] = next_runs(trigger)
        return super().change_view(request, object_id, form_url, extra)

    def _urls(self):
        return {
            "kanri_references_url": reverse("admin:automations_workflow_references"),
            "kanri_schedule_url": reverse("admin:automations_workflow_schedule"),
        }

    # ------------------------------------------------------------ extra pages

    def get_urls(self):
        view = self.admin_site.admin_view
        info = "automations_workflow"
        return [
            path("inventory/", view(self.inventory_view), name=f"{info}_inventory"),
            path("from-template/", view(self.gallery_view), name=f"{info}_gallery"),
            path("references/", view(self.references_view), name=f"{info}_references"),
            path("schedule/", view(self.schedule_view), name=f"{info}_schedule"),
            path("<path:object_id>/preview/", view(self.preview_view), name=f"{info}_preview"),
            path("<path:object_id>/backtest/", view(self.backtest_view), name=f"{info}_backtest"),
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
            raise Http404(_t("No such workflow."))
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
                "trigger": workflows.trigger_label(definition.trigger_of(workflow)),
                "status": workflow.get_status_display(),
            },
            change_url=reverse("admin:automations_workflow_change", args=[workflow.pk]),
            **context,
        )

    def references_view(self, request):
        """The editor's menus, from the server's catalog (see `references_for`)."""
        if not self.has_change_permission(request) and not self.has_add_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return JsonResponse({"error": "POST a JSON body"}, status=405)
        try:
            body = json.loads(request.body or b"{}")
            items = [
                (
                    str(s["key"]),
                    str(s.get("name") or ""),
                    str(s.get("kind") or ""),
                    str(s.get("placement") or ""),
                    int(s["position"]) if str(s.get("position") or "").isdigit() else None,
                )
                for s in body.get("steps") or []
            ][:500]
            trigger = parse_trigger(str(body.get("trigger") or ""), body)
        except (ValueError, TypeError, KeyError, AttributeError):
            return JsonResponse({"error": "malformed body"}, status=400)
        return JsonResponse(references_for(trigger, items))

    def schedule_view(self, request):
        """The next runs of the schedule being edited (the form's fields, as a GET query)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return JsonResponse(next_runs(parse_trigger("schedule:", request.GET)))

    def preview_view(self, request, object_id):
        workflow = self._workflow(request, object_id, self.has_change_permission)
        subjects = workflows.sample_subjects(workflow)
        # A typed id wins over the menu; the menu's choice otherwise (two fields, two names).
        chosen = (
            (request.GET.get("event_id") or "").strip()
            or request.GET.get("event")
            or (subjects[0][0] if subjects else "")
        )
        result, errors, missing = None, [], False
        current = workflows.draft(workflow)
        errors = [str(p) for p in definition.validate(current)]
        if chosen and not errors:
            data = workflows.subject_data(workflow, chosen)
            if data is None:
                missing = True
            else:
                result = run_page.preview_context(workflows.preview(current, data, workflow.pk))
        return self._page(
            request,
            workflow,
            "admin/automations/workflow/preview.html",
            title=_t("Preview: %(name)s") % {"name": workflow.name},
            events=[{"id": subject_id, "created": created} for subject_id, created in subjects],
            chosen=chosen,
            result=result,
            errors=errors,
            missing=missing,
        )

    def backtest_view(self, request, object_id):
        """The draft rehearsed on the stored events of the last N days (nothing is sent):
        what staff should see before activating it. The same service function as
        `replay_events --dry-run`."""
        workflow = self._workflow(request, object_id, self.has_change_permission)
        form = BacktestForm(request.GET if "days" in request.GET else None)
        current = workflows.draft(workflow)
        result, errors = None, []
        unsupported = current["trigger"].get("kind") != TriggerKind.STRIPE_EVENT
        if not unsupported and form.is_valid():
            until = timezone.now()
            since = until - timedelta(days=form.cleaned_data["days"])
            try:
                report = workflows.backtest(current, since, until, workflow.pk)
            except InvalidDefinition as e:
                errors = [str(p) for p in e.problems]
            else:
                result = backtest_context(report)
        return self._page(
            request,
            workflow,
            "admin/automations/workflow/backtest.html",
            title=_t("Backtest: %(name)s") % {"name": workflow.name},
            form=form,
            unsupported=unsupported,
            errors=errors,
            result=result,
        )

    def activate_view(self, request, object_id):
        workflow = self._workflow(request, object_id, self.has_change_permission)
        current = workflows.draft(workflow)
        allowed, reason = workflows.can_activate(request.user, current)
        if not allowed:
            raise PermissionDenied(workflows.reason_text(reason))
        active = workflow.active_version.definition if workflow.active_version_id else None
        cleaned, problems = definition.check(current)
        if request.method == "POST" and not problems:
            version = workflows.activate(workflow, request.user)
            self.message_user(
                request,
                _t("“%(name)s” is active (version %(number)d).")
                % {"name": workflow.name, "number": version.number},
            )
            return HttpResponseRedirect(
                reverse("admin:automations_workflow_change", args=[workflow.pk])
            )
        return self._page(
            request,
            workflow,
            "admin/automations/workflow/activate.html",
            title=_t("Activate %(name)s?") % {"name": workflow.name},
            errors=[str(p) for p in problems],
            diff=workflows.diff(
                readable.money_definition(active), readable.money_definition(cleaned)
            ),
            moves_money=definition.moves_money(current),
            providers=definition.providers(current),
        )

    def pause_view(self, request, object_id):
        workflow = self._workflow(request, object_id, self.has_change_permission)
        if not self.has_activate_permission(request):
            raise PermissionDenied
        allowed, reason = workflows.can_pause(request.user, workflow)
        if not allowed:
            raise PermissionDenied(workflows.reason_text(reason))
        if request.method == "POST" and workflows.pause(workflow, request.user):
            self.message_user(
                request, _t("“%(name)s” is paused: no new runs start.") % {"name": workflow.name}
            )
        return HttpResponseRedirect(
            reverse("admin:automations_workflow_change", args=[workflow.pk])
        )

    def versions_view(self, request, object_id):
        workflow = self._workflow(request, object_id, self.has_view_permission)
        history = workflows.history(workflow, shown=readable.money_definition)
        return self._page(
            request,
            workflow,
            "admin/automations/workflow/versions.html",
            title=_t("History: %(name)s") % {"name": workflow.name},
            can_restore=self.has_change_permission(request, workflow),
            **history,
        )

    def restore_view(self, request, object_id, number):
        workflow = self._workflow(request, object_id, self.has_change_permission)
        if not workflow.versions.filter(number=number).exists():
            raise Http404(_t("No such version."))
        if request.method == "POST":
            try:
                workflows.restore(workflow, number, request.user)
            except InvalidDefinition as e:
                self.message_user(
                    request,
                    _t("Version %(number)d cannot be restored: %(problems)s")
                    % {"number": number, "problems": "; ".join(str(p) for p in e.problems)},
                    level="error",
                )
            else:
                self.message_user(
                    request,
                    _t("The draft is now version %(number)d again; activate it to use it.")
                    % {"number": number},
                )
        return HttpResponseRedirect(
            reverse("admin:automations_workflow_change", args=[workflow.pk])
        )

    def gallery_view(self, request):
        """New workflow from template: each template's name and description; the one
        chosen becomes a draft through the service, owned by whoever chose it."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        chosen = request.POST.get("template") if request.method == "POST" else None
        if chosen in templates.TEMPLATES:
            data = templates.build(chosen)
            templates.ensure_filters(data)  # a scheduled template's saved filter
            workflow = workflows.create(data, owner=request.user, user=request.user)
            self.message_user(
                request,
                _t("“%(name)s” is a new draft from its template: adjust it, then activate it.")
                % {"name": workflow.name},
            )
            return HttpResponseRedirect(
                reverse("admin:automations_workflow_change", args=[workflow.pk])
            )
        return page(
            self,
            request,
            "admin/automations/workflow/gallery.html",
            title=_t("New workflow from template"),
            templates=templates.gallery(),
            error=_t("Choose one of the templates.") if request.method == "POST" else "",
        )

    def inventory_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = [
            {**row, "url": reverse("admin:automations_workflow_change", args=[row["id"]])}
            for row in workflows.inventory()
        ]
        return page(
            self,
            request,
            "admin/automations/inventory.html",
            title=_t("Inventory: what automates what"),
            rows=rows,
        )


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdmin):
    list_display = ["workflow", "number", "created_by", "created_at"]
    list_filter = ["workflow"]
