from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from automations import definitions
from automations.models import Condition, Run, RunStep, Step, Workflow, WorkflowVersion


class ConditionInline(admin.TabularInline):
    model = Condition
    extra = 0
    fields = ["step", "group", "position", "field", "operator", "value", "currency"]


class StepInline(admin.TabularInline):
    model = Step
    fk_name = "workflow"
    extra = 0
    fields = ["position", "name", "kind", "parent", "arm", "config"]


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["name", "event_type", "status", "owner", "active_version", "updated_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["name", "description"]
    readonly_fields = ["status", "active_version", "created_at", "updated_at"]
    inlines = [ConditionInline, StepInline]
    actions = ["activate_selected", "pause_selected"]

    @admin.action(description="Activate selected workflows")
    def activate_selected(self, request, queryset):
        for workflow in queryset:
            try:
                version = definitions.activate(workflow, request.user)
            except ValidationError as e:
                self.message_user(
                    request, f"{workflow}: not activated: {'; '.join(e.messages)}", messages.ERROR
                )
            else:
                self.message_user(request, f"{workflow}: active (version {version.number}).")

    @admin.action(description="Pause selected workflows")
    def pause_selected(self, request, queryset):
        for workflow in queryset:
            definitions.pause(workflow)
        self.message_user(request, f"Paused {queryset.count()} workflow(s).")


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


class RunStepInline(admin.TabularInline):
    model = RunStep
    extra = 0
    can_delete = False
    fields = [
        "step_name",
        "kind",
        "attempt",
        "status",
        "input",
        "output",
        "error",
        "idempotency_key",
        "started_at",
        "duration_ms",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "workflow",
        "event_type",
        "trigger_key",
        "status",
        "attempt",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "workflow", "event_type", "created_at"]
    search_fields = ["trigger_key"]
    list_select_related = ["workflow"]
    inlines = [RunStepInline]
