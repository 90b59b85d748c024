"""API: the run audit log. A list with the admin's filters, each run with its attempts, and
the decisions staff take on runs: retry, cancel, settle an unknown outcome, approve or reject.

Runs are written only by the engine, so the API reads them and acts through the workflow
service (automations/workflows.py); it never creates, edits or deletes one.
"""

from datetime import UTC, timedelta

import django_filters
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from automations import workflows
from automations.models import Run, RunStep, TriggerKind, Workflow
from automations.redaction import redact, redact_data

# ------------------------------------------------------------------ permissions


class RunPermissions(permissions.DjangoModelPermissions):
    """Reading runs needs `view_run`; acting on them needs `retry_run`, except approving and
    rejecting, which the service decides (`approve_run`, and not on one's own run or edit)."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        # Runs are never added here: a POST is an action on a run the user may see.
        "POST": ["%(app_label)s.view_%(model_name)s"],
    }
    ACTION_PERMS = {
        "retry": ["automations.retry_run"],
        "cancel": ["automations.retry_run"],
        "decide": ["automations.retry_run"],
    }

    def has_permission(self, request, view):
        if view.action is None:
            # A method no route takes (PUT, DELETE): the answer is 405, not a permission.
            return bool(request.user and request.user.is_authenticated)
        if not super().has_permission(request, view):
            return False
        return request.user.has_perms(self.ACTION_PERMS.get(view.action, []))


class Conflict(APIException):
    """The run is no longer in a state for this (another person or the worker got there first)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"

    def __init__(self, code, detail):
        super().__init__({"detail": detail, "code": code})


CONFLICTS = {
    "not_failed": _("Only a failed run can be retried."),
    "not_waiting": _("Only a queued, retrying or held run can be cancelled."),
    "not_waiting_on_step": _("This run no longer waits on that step."),
}


def _conflict(code):
    raise Conflict(code, str(CONFLICTS[code]))


# ------------------------------------------------------------------ filters

MAX_OFFSET = timedelta(hours=14)  # Kiribati's; the furthest west is -12:00


class StatusInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """`status__in=failed,held`, as the admin's multi-select filter writes it."""


class InstantField(IsoDateTimeField):
    """An ISO 8601 instant whose UTC offset is one a place has (-12:00 to +14:00).

    Python accepts offsets up to ±24 h, PostgreSQL only up to ±15:59: passed on as given,
    "+20:31" is a database error (a 500) rather than the 400 it deserves.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        offset = value.utcoffset()
        try:
            if offset is None or not -MAX_OFFSET <= offset <= MAX_OFFSET:
                raise OverflowError
            return value.astimezone(UTC)
        except OverflowError:  # the offset, or a year 1 or 9999 that leaves the range in UTC
            raise ValidationError(_("Enter a date and time with a real UTC offset.")) from None


class InstantFilter(django_filters.IsoDateTimeFilter):
    field_class = InstantField


class RunFilter(django_filters.FilterSet):
    """The admin run list's filters, with the admin's parameter names."""

    workflow = django_filters.ModelChoiceFilter(queryset=Workflow.objects.all())
    status = django_filters.ChoiceFilter(choices=Run.Status.choices)
    status__in = StatusInFilter(field_name="status", choices=Run.Status.choices)
    hold_reason = django_filters.ChoiceFilter(choices=Run.HoldReason.choices)
    trigger_kind = django_filters.ChoiceFilter(choices=TriggerKind.choices)
    event_type = django_filters.CharFilter()
    created_at__gte = InstantFilter(field_name="created_at", lookup_expr="gte")
    created_at__lt = InstantFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Run
        fields = []


class RunPagination(CursorPagination):
    ordering = ("-created_at", "-pk")


# ------------------------------------------------------------------ plain data


def run_row(run):
    """Return a run as plain data for the list (no snapshot, no steps)."""
    return {
        "id": run.pk,
        "workflow": run.workflow_id,
        "workflow_name": run.workflow.name,
        "version": run.version.number,
        "trigger_kind": run.trigger_kind,
        "trigger_key": run.trigger_key,
        "event_type": run.event_type,
        "status": run.status,
        "hold_reason": run.hold_reason,
        "attempt": run.attempt,
        "error": redact(run.error),
        "started_by": run.started_by.get_username() if run.started_by_id else None,
        "batch": run.batch_id,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "next_attempt_at": run.next_attempt_at,
    }


def step_row(step):
    """Return one attempt at one step: what was sent, what came back, secrets redacted."""
    return {
        "name": step.step_name,
        "kind": step.kind,
        "attempt": step.attempt,
        "status": step.status,
        "input": redact_data(step.input),
        "output": redact_data(step.output),
        "error": redact(step.error),
        "idempotency_key": step.idempotency_key,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "duration_ms": step.duration_ms,
        "amount": step.amount,
        "currency": step.currency,
        "decision": step.decision,
        "decided_by": step.decided_by.get_username() if step.decided_by_id else None,
        "decided_at": step.decided_at,
        # A person must choose "send again" or "skip" before the run goes on.
        "undecided": step.status == RunStep.Status.UNKNOWN and not step.decision,
    }


def run_detail(run):
    """Return a run with its snapshot, every attempt, and what it waits for if held."""
    pending = None
    if run.status == Run.Status.HELD and run.hold_reason == Run.HoldReason.APPROVAL:
        pending = workflows.pending_approval(run)
    return {
        **run_row(run),
        "trigger_data": redact_data(run.snapshot),
        "steps": [step_row(s) for s in run.steps.select_related("decided_by").order_by("pk")],
        "pending_approval": pending,
    }


# ------------------------------------------------------------------ serializers (the schema)


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    workflow = serializers.IntegerField()
    workflow_name = serializers.CharField()
    version = serializers.IntegerField()
    trigger_kind = serializers.ChoiceField(choices=TriggerKind.choices)
    trigger_key = serializers.CharField()
    event_type = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=Run.Status.choices)
    hold_reason = serializers.ChoiceField(choices=Run.HoldReason.choices, allow_blank=True)
    attempt = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    started_by = serializers.CharField(allow_null=True)
    batch = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)


class RunStepSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    attempt = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RunStep.Status.choices)
    input = serializers.JSONField(allow_null=True)
    output = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    idempotency_key = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField()
    amount = serializers.IntegerField(allow_null=True)
    currency = serializers.CharField(allow_blank=True)
    decision = serializers.ChoiceField(choices=RunStep.Decision.choices, allow_blank=True)
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    undecided = serializers.BooleanField()


class ExceededCapSerializer(serializers.Serializer):
    cap = serializers.CharField(help_text="per_run, per_day or amount_unknown")
    limit = serializers.IntegerField(allow_null=True, required=False)
    total = serializers.IntegerField(allow_null=True, required=False)


class PendingApprovalSerializer(serializers.Serializer):
    step = serializers.CharField()
    amount = serializers.IntegerField(
        help_text="In the currency's minor units, as Stripe sends it."
    )
    currency = serializers.CharField(allow_blank=True)
    exceeded = ExceededCapSerializer(many=True)
    requested_at = serializers.DateTimeField()


class RunDetailSerializer(RunSerializer):
    trigger_data = serializers.JSONField(help_text="The trigger's data: the run's snapshot.")
    steps = RunStepSerializer(many=True)
    pending_approval = PendingApprovalSerializer(allow_null=True)


class DecideSerializer(serializers.Serializer):
    step = serializers.CharField(max_length=50)
    decision = serializers.ChoiceField(choices=RunStep.Decision.choices)


class RunConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class RunForbiddenSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(
        required=False, help_text="The service's reason, e.g. approve_own_run."
    )


class RunNotFoundSerializer(serializers.Serializer):
    detail = serializers.CharField()


FORBIDDEN = OpenApiResponse(RunForbiddenSerializer, description="Not allowed; `code` says why.")
NOT_FOUND = OpenApiResponse(RunNotFoundSerializer, description="No such run.")
CONFLICT = OpenApiResponse(RunConflictSerializer, description="The run is not in a state for this.")
BAD_REQUEST = OpenApiResponse(OpenApiTypes.OBJECT, description="The field errors, by field.")
ACTED = {200: RunDetailSerializer, 403: FORBIDDEN, 404: NOT_FOUND}


@extend_schema_view(
    list=extend_schema(
        summary="List runs, newest first",
        responses={
            200: RunSerializer(many=True),
            400: BAD_REQUEST,
            403: FORBIDDEN,
            404: OpenApiResponse(RunNotFoundSerializer, description="Invalid cursor."),
        },
    ),
    retrieve=extend_schema(
        summary="A run with its snapshot, every attempt and what it waits for",
        responses={200: RunDetailSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    ),
)
class RunViewSet(viewsets.GenericViewSet):
    """The run audit log (read-only) and the decisions staff take on runs."""

    queryset = Run.objects.select_related("workflow", "version", "started_by")
    permission_classes = [RunPermissions]
    pagination_class = RunPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = RunFilter
    serializer_class = RunSerializer
    throttle_scope = "writes"

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([run_row(run) for run in page])

    def retrieve(self, request, pk=None):
        return Response(run_detail(self.get_object()))

    def _fresh(self, run):
        return Response(run_detail(self.get_queryset().get(pk=run.pk)))

    @extend_schema(
        summary="Queue a failed run again",
        request=None,
        responses={**ACTED, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        run = self.get_object()
        if not workflows.retry([run.pk], user=request.user):
            _conflict("not_failed")
        return self._fresh(run)

    @extend_schema(
        summary="Cancel a queued, retrying or held run",
        request=None,
        responses={**ACTED, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        if not workflows.cancel([run.pk], user=request.user):
            _conflict("not_waiting")
        return self._fresh(run)

    @extend_schema(
        summary="Settle a step whose outcome is unknown: send it again, or skip it",
        request=DecideSerializer,
        responses={**ACTED, 400: BAD_REQUEST, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        run = self.get_object()
        body = DecideSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        taken = workflows.decide(
            run, body.validated_data["step"], body.validated_data["decision"], request.user
        )
        if not taken:
            _conflict("not_waiting_on_step")
        return self._fresh(run)

    @extend_schema(
        summary="Approve a run held above a money cap: its waiting step is sent",
        request=None,
        responses=ACTED,
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        run = self.get_object()
        workflows.approve(run, request.user)  # NotAllowed -> 403 with its reason code
        return self._fresh(run)

    @extend_schema(
        summary="Reject a run held above a money cap: it is cancelled, nothing is sent",
        request=None,
        responses=ACTED,
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        run = self.get_object()
        workflows.reject(run, request.user)
        return self._fresh(run)


def register(router):
    """Add this module's viewsets to the API router."""
    router.register("runs", RunViewSet, basename="run")
