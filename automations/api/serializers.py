"""The API's request and response bodies for workflows, as DRF serializers.

Requests are checked here only for their shape (types, sizes); what a definition may say
is the one validator's decision (automations/definition.py through the service), so a
bad definition is answered with its located problems, exactly as the admin shows them.
Responses are plain dicts rendered through these serializers, so the served schema is
the shape of what is sent.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

# Stripe ids are short ("ch_3Nx…"); the run's trigger key holds one plus a request token.
OBJECT_ID_MAX = 100
RUN_OBJECTS_MAX = 1000
BACKTEST_DAYS_MAX = 90  # as the admin's Backtest page


# ------------------------------------------------------------------ errors


class ProblemSerializer(serializers.Serializer):
    where = serializers.CharField(help_text=_("A dotted path into the definition."))
    code = serializers.CharField()
    params = serializers.DictField()
    message = serializers.CharField()


class BadRequestSerializer(serializers.Serializer):
    """400: the validator's located problems (the same the admin puts next to its fields),
    or, for a body that is not what the endpoint takes, `detail` or errors per field."""

    problems = ProblemSerializer(many=True, required=False)
    detail = serializers.CharField(required=False)
    code = serializers.CharField(required=False)


class RefusalSerializer(serializers.Serializer):
    """401, 403 or 409: why the request was refused; the service's refusals carry a code."""

    detail = serializers.CharField()
    code = serializers.CharField(required=False)


# ------------------------------------------------------------------ workflows


class WorkflowRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    trigger = serializers.CharField(help_text=_("The trigger as staff call it."))
    active_version = serializers.IntegerField(allow_null=True)
    moves_money = serializers.BooleanField()
    owner = serializers.CharField(allow_null=True, help_text=_("The owner's username."))
    updated_at = serializers.DateTimeField()


class WorkflowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    owner = serializers.CharField(allow_null=True)
    active_version = serializers.IntegerField(allow_null=True)
    unactivated_changes = serializers.BooleanField(
        help_text=_("The draft differs from the active version.")
    )
    moves_money = serializers.BooleanField()
    can_activate = serializers.BooleanField(help_text=_("Whether the caller may activate it."))
    activate_reason = serializers.CharField(
        allow_blank=True, help_text=_("Why not, as a code (empty when allowed).")
    )
    definition = serializers.JSONField(help_text=_("The draft definition."))
    problems = ProblemSerializer(many=True, help_text=_("What keeps the draft from running."))


class DefinitionWriteSerializer(serializers.Serializer):
    definition = serializers.JSONField(
        help_text=_("A workflow definition: name, trigger, conditions, steps, limits.")
    )


class WorkflowCreateSerializer(DefinitionWriteSerializer):
    owner = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=150,
        help_text=_("The owner's username (default: you)."),
    )


class VersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(allow_blank=True)
    active = serializers.BooleanField()
    diff = serializers.ListField(
        child=serializers.CharField(), help_text=_("Unified diff from the version before.")
    )


class HistorySerializer(serializers.Serializer):
    versions = VersionSerializer(many=True, help_text=_("Newest first."))
    unactivated = serializers.ListField(
        child=serializers.CharField(), help_text=_("Unified diff from the newest version.")
    )


class DiffSerializer(serializers.Serializer):
    to_draft = serializers.BooleanField()
    lines = serializers.ListField(child=serializers.CharField())


class DryRunRequestSerializer(serializers.Serializer):
    event_id = serializers.CharField(
        required=False,
        max_length=OBJECT_ID_MAX,
        help_text=_("A stored Stripe event (or, for a manual workflow, a Stripe object id)."),
    )
    payload = serializers.JSONField(
        required=False, help_text=_("An event as Stripe sends it, instead of a stored one.")
    )

    def validate_payload(self, value):
        # The engine reads data.object as an object; anything else is not an event.
        data = value.get("data") if isinstance(value, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
            raise serializers.ValidationError(
                _("An event is an object whose “data” holds an “object”.")
            )
        return value

    def validate(self, attrs):
        if ("event_id" in attrs) == ("payload" in attrs):
            raise serializers.ValidationError(_("Give either “event_id” or “payload”."))
        return attrs


class RehearsalSerializer(serializers.Serializer):
    """What the definition would do on one event; nothing was sent."""

    event = serializers.DictField()
    trigger_matches = serializers.BooleanField()
    matched = serializers.BooleanField(help_text=_("The conditions hold."))
    conditions = serializers.ListField(child=serializers.DictField())
    steps = serializers.ListField(
        child=serializers.DictField(),
        help_text=_("Each step: name, kind, label, request (what would be sent), error."),
    )
    halted = serializers.BooleanField(required=False)


class BacktestRequestSerializer(serializers.Serializer):
    days = serializers.IntegerField(required=False, min_value=1, max_value=BACKTEST_DAYS_MAX)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if "days" in attrs and ({"since", "until"} & set(attrs)):
            raise serializers.ValidationError(_("Give either “days” or “since” and “until”."))
        if "days" not in attrs and "since" not in attrs:
            raise serializers.ValidationError(_("Give “days”, or “since” (and “until”)."))
        if attrs.get("until") and attrs["until"] < attrs.get("since", attrs["until"]):
            raise serializers.ValidationError(_("“until” is before “since”."))
        return attrs


class BacktestSerializer(serializers.Serializer):
    """What the definition would have done on the stored events of the period."""

    workflow = serializers.DictField()
    event_type = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    considered = serializers.IntegerField()
    matched = serializers.IntegerField()
    own = serializers.IntegerField(help_text=_("Events its own Stripe writes caused."))
    halted = serializers.IntegerField()
    branches = serializers.DictField()
    money = serializers.DictField(help_text=_("Minor units per currency it would have moved."))
    money_steps = serializers.DictField()
    events = serializers.ListField(child=serializers.DictField())
    events_more = serializers.IntegerField(help_text=_("Matched events left out of the list."))
    requests = serializers.ListField(child=serializers.DictField())
    requests_more = serializers.IntegerField()


class RunRequestSerializer(serializers.Serializer):
    object_ids = serializers.ListField(
        child=serializers.CharField(max_length=OBJECT_ID_MAX),
        min_length=1,
        max_length=RUN_OBJECTS_MAX,
    )
    request_token = serializers.RegexField(
        r"^[A-Za-z0-9_-]{8,64}$",
        required=False,
        help_text=_("Names this request: sending it again starts nothing new."),
    )


class RunStartedSerializer(serializers.Serializer):
    started = serializers.ListField(child=serializers.IntegerField(), help_text=_("Run ids."))
    not_started = serializers.IntegerField(
        help_text=_("Objects whose conditions did not hold, or that already ran.")
    )
    missing = serializers.ListField(
        child=serializers.CharField(), help_text=_("Ids not in Kanri's copy of Stripe.")
    )
    request_token = serializers.CharField()
    batch = serializers.IntegerField()
