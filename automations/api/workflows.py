"""API: workflows. A screen for automations/workflows.py, as the admin is: drafts, activation
and pausing, versions and diffs, dry-runs, backtests and manual runs.

Every rule is the service's: the validator's problems come back as 400 {"problems"}, its
refusals (the money and approver rules) as 403 {"detail", "code"} (automations/api/errors.py).
This module checks only that a request has the right shape and that the caller holds the
Django permission the matching admin page asks for.
"""

import json
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import BaseParser
from rest_framework.permissions import DjangoModelPermissions
from rest_framework.response import Response

from automations import audit, definition, workflows
from automations.api import serializers as s
from automations.api.errors import problems_body
from automations.models import Workflow
from automations.redaction import redact_data
from automations.replays import CannotBacktest

# Deeper than any definition the validator accepts (branches nest at most 20 deep, two
# levels each), shallow enough that no recursive code after parsing can overflow.
MAX_BODY_DEPTH = 100
BACKTEST_SHOWN = 100  # as the admin's Backtest page; the counts cover every event


def _too_deep(value, limit):
    """Return whether parsed JSON nests deeper than `limit` (checked without recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in item)
    return False


class JSONBodyParser(BaseParser):
    """A JSON parser answering 400 for what would otherwise be a 500 or a slow read: a
    body over Django's upload limit, or nesting Python's decoder cannot follow.

    Not a subclass of DRF's JSONParser: DRF reads `request.body` for those, where Django's
    own size check raises before any handler of the API's could answer in JSON.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and length.isdigit() and int(length) > limit:
            raise ParseError(_("The body is larger than %(limit)d bytes.") % {"limit": limit})
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ParseError(_("The body is larger than %(limit)d bytes.") % {"limit": limit})
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_no_constant)
        except RecursionError as e:
            raise ParseError(_("The JSON is nested too deeply.")) from e
        except ValueError as e:  # also UnicodeDecodeError
            raise ParseError(_("The body is not valid JSON.")) from e
        if _too_deep(data, MAX_BODY_DEPTH):
            raise ParseError(_("The JSON is nested too deeply."))
        return data


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity (DRF's strict mode)


class WorkflowPermission(DjangoModelPermissions):
    """Reading needs view_workflow; each action the permission its admin page asks for.

    The service still decides what only it can: activating and running money-moving
    workflows, and running on selected objects.
    """

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }
    ACTIONS = {
        "activate": "automations.change_workflow",
        "pause": "automations.change_workflow",
        "dry_run": "automations.change_workflow",
        "backtest": "automations.change_workflow",
        "run": "automations.view_workflow",
    }

    def has_permission(self, request, view):
        needed = self.ACTIONS.get(getattr(view, "action", None))
        if needed is None:
            return super().has_permission(request, view)
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(needed))


class WorkflowCursor(CursorPagination):
    # Recently changed first; the primary key orders workflows saved in the same instant.
    ordering = ("-updated_at", "-pk")


def _row(workflow, data):
    return {
        "id": workflow.pk,
        "name": workflow.name,
        "status": workflow.status,
        "trigger": workflows.trigger_label(data["trigger"]),
        "active_version": workflow.active_version.number if workflow.active_version_id else None,
        "moves_money": definition.moves_money(data),
        "owner": workflow.owner.get_username() if workflow.owner_id else None,
        "updated_at": workflow.updated_at,
    }


def _detail(workflow, user):
    state = workflows.status(workflow, user)
    body = {
        "id": workflow.pk,
        "name": workflow.name,
        "status": workflow.status,
        "owner": workflow.owner.get_username() if workflow.owner_id else None,
        "active_version": state["active_version"],
        "unactivated_changes": state["unactivated_changes"],
        "moves_money": state["moves_money"],
        "can_activate": state["can_activate"],
        "activate_reason": state["activate_reason"],
        "definition": workflows.draft(workflow),
        **problems_body(state["problems"]),
    }
    return s.WorkflowSerializer(body).data


def _refusal(detail, code, status_code):
    return Response({"detail": str(detail), "code": code}, status=status_code)


def _valid(serializer_class, request):
    if not isinstance(request.data, dict):
        raise ParseError(_("The body must be a JSON object."))
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


ERRORS = {
    400: OpenApiResponse(
        s.BadRequestSerializer, description=_("Located problems, or a body it cannot take.")
    ),
    401: OpenApiResponse(s.RefusalSerializer, description=_("Not signed in.")),
    403: OpenApiResponse(
        s.RefusalSerializer, description=_("Not allowed (the service's refusals have a code).")
    ),
    404: OpenApiResponse(description=_("No such workflow.")),
}


def answers(ok_status, ok, **more):
    """Return an action's documented responses: its own and every error it may give."""
    return {ok_status: ok, **ERRORS, **{int(k[1:]): v for k, v in more.items()}}


@extend_schema(tags=["workflows"])
class WorkflowViewSet(viewsets.GenericViewSet):
    queryset = Workflow.objects.select_related("owner", "active_version")
    permission_classes = [WorkflowPermission]
    pagination_class = WorkflowCursor
    parser_classes = [JSONBodyParser]
    throttle_scope = "writes"
    lookup_value_regex = r"[0-9]{1,18}"
    serializer_class = s.WorkflowSerializer

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    @extend_schema(responses=answers(200, s.WorkflowRowSerializer(many=True)))
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        drafts = definition.snapshots([w for w in page if not w.active_version_id])
        rows = [
            _row(w, w.active_version.definition if w.active_version_id else drafts[w.pk])
            for w in page
        ]
        return self.get_paginated_response(s.WorkflowRowSerializer(rows, many=True).data)

    @extend_schema(responses=answers(200, s.WorkflowSerializer))
    def retrieve(self, request, pk=None):
        return Response(_detail(self.get_object(), request.user))

    @extend_schema(
        request=s.WorkflowCreateSerializer,
        responses=answers(201, s.WorkflowSerializer),
    )
    def create(self, request):
        body = _valid(s.WorkflowCreateSerializer, request)
        owner = request.user
        if body.get("owner"):
            owner = get_user_model().objects.filter(username=body["owner"]).first()
            if owner is None:
                raise ValidationError({"owner": [_("There is no user with this username.")]})
        workflow = workflows.create(body["definition"], owner=owner, user=request.user)
        return Response(_detail(workflow, request.user), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.DefinitionWriteSerializer,
        responses=answers(200, s.WorkflowSerializer),
        description=_(
            "Replace the draft. An active workflow keeps running its active version until "
            "the draft is activated."
        ),
    )
    def update(self, request, pk=None):
        workflow = self.get_object()
        body = _valid(s.DefinitionWriteSerializer, request)
        workflows.save_draft(workflow, body["definition"], user=request.user)
        _log_edit(request.user, workflow)
        return Response(_detail(workflow, request.user))

    @extend_schema(
        responses=answers(
            204,
            None,
            _409=OpenApiResponse(
                s.RefusalSerializer, description=_("It was activated: pause it instead.")
            ),
        ),
        description=_("Delete a draft that was never activated."),
    )
    def destroy(self, request, pk=None):
        workflow = self.get_object()
        try:
            workflows.delete(workflow, request.user)
        except workflows.NotAllowed as e:
            if e.reason != "delete_activated":
                raise
            return _refusal(e.message, "has_versions", status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    # ------------------------------------------------------------ activation

    @extend_schema(
        request=None,
        responses=answers(200, s.WorkflowSerializer),
        description=_(
            "Make the draft the active version (a new version when it changed). A workflow "
            "that moves money needs an approver."
        ),
    )
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        workflow = self.get_object()
        workflows.activate(workflow, user=request.user)
        return Response(_detail(self.get_object(), request.user))

    @extend_schema(
        request=None,
        responses=answers(200, s.WorkflowSerializer),
        description=_("Stop new runs; runs already started finish. Idempotent."),
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        workflow = self.get_object()
        workflows.pause(workflow, user=request.user)
        return Response(_detail(self.get_object(), request.user))

    # ------------------------------------------------------------ versions

    @extend_schema(responses=answers(200, s.HistorySerializer))
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        history = workflows.history(self.get_object())
        body = {"versions": history["versions"], "unactivated": history["unactivated"]}
        return Response(s.HistorySerializer(body).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from",
                OpenApiTypes.INT,
                description=_("A version number (default: the active version, or nothing)."),
            ),
            OpenApiParameter(
                "to", OpenApiTypes.INT, description=_("A version number (default: the draft).")
            ),
        ],
        responses=answers(200, s.DiffSerializer),
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, pk=None):
        workflow = self.get_object()
        old = (
            self._version(workflow, request.query_params["from"])
            if request.query_params.get("from")
            else (workflow.active_version.definition if workflow.active_version_id else None)
        )
        to = request.query_params.get("to")
        new = self._version(workflow, to) if to else workflows.draft(workflow)
        body = {"to_draft": not to, "lines": workflows.diff(old, new)}
        return Response(s.DiffSerializer(body).data)

    def _version(self, workflow, number):
        if not number.isdigit() or len(number) > 9:
            raise ValidationError({"detail": _("A version is a whole number.")})
        return get_object_or_404(workflow.versions, number=int(number)).definition

    # ------------------------------------------------------------ rehearsals

    @extend_schema(
        request=s.DryRunRequestSerializer,
        responses=answers(200, s.RehearsalSerializer),
        description=_(
            "Walk the draft on a stored event (or object) or a posted event: every request "
            "it would send is shown, and nothing is sent."
        ),
    )
    @action(detail=True, methods=["post"], url_path="dry-run")
    def dry_run(self, request, pk=None):
        workflow = self.get_object()
        body = _valid(s.DryRunRequestSerializer, request)
        if "payload" in body:
            trigger_data = body["payload"]
        else:
            trigger_data = workflows.subject_data(workflow, body["event_id"])
            if trigger_data is None:
                return _refusal(
                    _("There is no stored event or object with this id."),
                    "subject_unknown",
                    status.HTTP_400_BAD_REQUEST,
                )
        report = workflows.dry_run(workflows.draft(workflow), trigger_data, workflow.pk)
        # Event payloads carry client secrets of intents; no screen shows one.
        return Response(redact_data(report))

    @extend_schema(
        request=s.BacktestRequestSerializer,
        responses=answers(200, s.BacktestSerializer),
        description=_(
            "Rehearse the draft on the stored events of its type in a period: what it would "
            "have matched, sent and moved. Nothing is sent or written. The lists show at "
            "most %(count)d items; the counts cover every event."
        )
        % {"count": BACKTEST_SHOWN},
    )
    @action(detail=True, methods=["post"])
    def backtest(self, request, pk=None):
        workflow = self.get_object()
        body = _valid(s.BacktestRequestSerializer, request)
        until = body.get("until") or timezone.now()
        since = body.get("since") or until - timedelta(days=body["days"])
        try:
            report = workflows.backtest(workflows.draft(workflow), since, until, workflow.pk)
        except CannotBacktest:
            return _refusal(
                _("Only workflows started by a Stripe event can be backtested."),
                CannotBacktest.code,
                status.HTTP_400_BAD_REQUEST,
            )
        report = {
            **report,
            "since": since,
            "until": until,
            "events": report["events"][:BACKTEST_SHOWN],
            "events_more": max(0, len(report["events"]) - BACKTEST_SHOWN),
            "requests": report["requests"][:BACKTEST_SHOWN],
            "requests_more": max(0, len(report["requests"]) - BACKTEST_SHOWN),
        }
        return Response(redact_data(s.BacktestSerializer(report).data))

    # ------------------------------------------------------------ manual runs

    @extend_schema(
        request=s.RunRequestSerializer,
        responses=answers(200, s.RunStartedSerializer),
        description=_(
            "Start an active manual workflow on Stripe objects, one run each. The same "
            "request_token again starts nothing new and answers the same batch."
        ),
    )
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        workflow = self.get_object()
        body = _valid(s.RunRequestSerializer, request)
        result = workflows.run_on(
            workflow, body["object_ids"], user=request.user, token=body.get("request_token")
        )
        return Response(
            s.RunStartedSerializer(
                {
                    "started": result["started"],
                    "not_started": result["not_started"],
                    "missing": result["missing"],
                    "request_token": result["token"],
                    "batch": result["batch"],
                }
            ).data
        )


def _log_edit(user, workflow):
    # As the admin's change form records a saved draft (the service logs only creation).
    audit.log(user, workflow, "Draft saved through the API.")


def register(router):
    """Add this module's viewsets to the API router."""
    router.register("workflows", WorkflowViewSet, basename="workflow")
