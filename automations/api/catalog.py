"""API: what a definition can be written with (event types and their fields, action kinds),
and the template gallery.

The catalog comes from automations/catalog.py and integrations/registry.py, the same one
home the editor and the validator read, so the API cannot offer a field the server refuses.
"""

from django.http import Http404
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from automations import catalog, templates, workflows
from automations.api.auth import HasPerms
from integrations import fields as action_fields
from integrations.registry import ACTIONS, get_action

VIEW = ("automations.view_workflow",)
ADD = ("automations.add_workflow",)


class FieldSerializer(serializers.Serializer):
    path = serializers.CharField()
    label = serializers.CharField()
    type = serializers.ChoiceField(choices=catalog.TYPES)
    choices = serializers.ListField(child=serializers.CharField(), required=False)


class EventTypeSerializer(serializers.Serializer):
    type = serializers.CharField()
    label = serializers.CharField()
    group = serializers.CharField()
    object = serializers.CharField(help_text=_l("The Stripe object in `data.object`."))
    fields = FieldSerializer(many=True)


class ConfigFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    type = serializers.CharField(
        help_text=_l(
            "money, id, template (may use {{references}}), object, json, choice, "
            "integer, boolean or string."
        )
    )
    required = serializers.BooleanField()
    help_text = serializers.CharField(allow_blank=True)
    choices = serializers.ListField(child=serializers.CharField(), required=False)


class OutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    type = serializers.ChoiceField(choices=catalog.TYPES)


class ActionKindSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    provider = serializers.CharField()
    moves_money = serializers.BooleanField()
    reads_only = serializers.BooleanField()
    config = ConfigFieldSerializer(many=True)
    outputs = OutputSerializer(many=True, help_text=_l("What `{{steps.<name>.<output>}}` holds."))


class TemplateSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    trigger = serializers.CharField(help_text=_l("The trigger, in words."))
    providers = serializers.ListField(child=serializers.CharField())
    moves_money = serializers.BooleanField()


class CatalogErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


# Every endpoint here answers these when the caller is not signed in or lacks the role.
REFUSALS = {
    401: OpenApiResponse(CatalogErrorSerializer, description=_l("No valid token or session.")),
    403: OpenApiResponse(
        CatalogErrorSerializer, description=_l("The user's role does not allow it.")
    ),
}
NOT_FOUND = OpenApiResponse(CatalogErrorSerializer, description=_l("No such entry."))


class InstalledSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    url = serializers.CharField(allow_null=True, help_text=_l("The new workflow in this API."))
    admin_url = serializers.CharField()


def event_type(key):
    """Return one event type as a plain dict, with its field catalog."""
    info = catalog.EVENT_TYPES[key]
    return {
        "type": key,
        "label": _(info["label"]),
        "group": _(info["group"]),
        "object": info["object"],
        "fields": [{**field, "label": _(field["label"])} for field in catalog.trigger_fields(key)],
    }


# Form field classes -> what an API client types into them; the first match wins, so
# subclasses come before their bases.
CONFIG_TYPES = (
    (action_fields.AmountField, "money"),
    (action_fields.StripeIdField, "id"),
    (action_fields.TemplateField, "template"),
    (action_fields.MetadataField, "object"),
    ("JSONField", "json"),
    ("ChoiceField", "choice"),
    ("IntegerField", "integer"),
    ("BooleanField", "boolean"),
)


def _config_type(field):
    from django import forms

    for cls, name in CONFIG_TYPES:
        if isinstance(field, getattr(forms, cls) if isinstance(cls, str) else cls):
            return name
    return "string"


def action_kind(kind):
    """Return one action kind as a plain dict: its config fields and its outputs."""
    cls = get_action(kind)
    config = []
    for name, field in cls.form_class.base_fields.items():
        entry = {
            "name": name,
            "label": str(field.label or name.replace("_", " ").capitalize()),
            "type": _config_type(field),
            "required": field.required,
            "help_text": str(field.help_text or ""),
        }
        if entry["type"] == "choice":
            entry["choices"] = [str(value) for value, _label in field.choices if value != ""]
        config.append(entry)
    prefix = "steps.STEP."
    outputs = [
        {
            "name": f["path"][len(prefix) :],
            "label": str(cls.outputs[f["path"][len(prefix) :]]),
            "type": f["type"],
        }
        for f in catalog.step_fields("STEP", kind)
    ]
    return {
        "kind": kind,
        "label": str(cls.label),
        "provider": cls.provider,
        "moves_money": cls.moves_money,
        "reads_only": cls.reads_only,
        "config": config,
        "outputs": outputs,
    }


class CatalogViewSet(viewsets.ViewSet):
    """Read-only catalogs: every Kanri viewer may read them."""

    permission_classes = [HasPerms]
    required_perms = {"list": VIEW, "retrieve": VIEW}
    pagination_class = None
    lookup_value_regex = r"[^/]+"  # event types and action kinds contain dots


@extend_schema(tags=["catalog"])
class EventTypeViewSet(CatalogViewSet):
    lookup_field = "type"

    @extend_schema(
        summary=_l("Stripe event types a workflow can start on, with their fields"),
        responses={200: EventTypeSerializer(many=True), **REFUSALS},
    )
    def list(self, request):
        data = [event_type(key) for key in catalog.EVENT_TYPES]
        return Response(EventTypeSerializer(data, many=True).data)

    @extend_schema(
        summary=_l("One event type and its fields"),
        parameters=[OpenApiParameter("type", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={200: EventTypeSerializer, **REFUSALS, 404: NOT_FOUND},
    )
    def retrieve(self, request, type=None):
        if type not in catalog.EVENT_TYPES:
            raise Http404
        return Response(EventTypeSerializer(event_type(type)).data)


@extend_schema(tags=["catalog"])
class ActionKindViewSet(CatalogViewSet):
    lookup_field = "kind"

    @extend_schema(
        summary=_l("Action kinds a step can use, with their config fields and outputs"),
        responses={200: ActionKindSerializer(many=True), **REFUSALS},
    )
    def list(self, request):
        data = [action_kind(kind) for kind in ACTIONS]
        return Response(ActionKindSerializer(data, many=True).data)

    @extend_schema(
        summary=_l("One action kind"),
        parameters=[OpenApiParameter("kind", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={200: ActionKindSerializer, **REFUSALS, 404: NOT_FOUND},
    )
    def retrieve(self, request, kind=None):
        if kind not in ACTIONS:
            raise Http404
        return Response(ActionKindSerializer(action_kind(kind)).data)


def _api_url(request, workflow):
    # The workflows endpoints are another module's; until they are routed there is no URL.
    try:
        return request.build_absolute_uri(reverse("workflow-detail", args=[workflow.pk]))
    except NoReverseMatch:
        return None


@extend_schema(tags=["templates"])
class TemplateViewSet(CatalogViewSet):
    lookup_field = "key"
    required_perms = {"list": VIEW, "install": ADD}

    @extend_schema(
        summary=_l("The template gallery"),
        responses={200: TemplateSerializer(many=True), **REFUSALS},
    )
    def list(self, request):
        return Response(TemplateSerializer(templates.gallery(), many=True).data)

    @extend_schema(
        summary=_l("Install a template as a new draft workflow (editors)"),
        parameters=[OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH)],
        request=None,
        responses={
            201: InstalledSerializer,
            **REFUSALS,
            404: NOT_FOUND,
            429: OpenApiResponse(
                CatalogErrorSerializer, description=_l("Too many writes; see Retry-After.")
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def install(self, request, key=None):
        if key not in templates.TEMPLATES:
            raise Http404
        # The same three calls as the admin's gallery: the draft belongs to its installer.
        data = templates.build(key)
        templates.ensure_filters(data)  # a scheduled template's saved filter
        workflow = workflows.create(data, owner=request.user, user=request.user)
        body = {
            "id": workflow.pk,
            "name": workflow.name,
            "url": _api_url(request, workflow),
            "admin_url": request.build_absolute_uri(
                reverse("admin:automations_workflow_change", args=[workflow.pk])
            ),
        }
        return Response(InstalledSerializer(body).data, status=status.HTTP_201_CREATED)


def register(router):
    """Add this module's viewsets to the API router."""
    router.register("event-types", EventTypeViewSet, basename="event-type")
    router.register("actions", ActionKindViewSet, basename="action-kind")
    router.register("templates", TemplateViewSet, basename="template")
