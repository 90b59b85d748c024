"""Trigger kind `manual`: staff select Stripe objects in the admin and run a workflow on them.

A manual workflow names the kind of object it runs on (charge, customer, …). Each object
gets one run keyed by the object and the confirmed request, so submitting the same
confirmation twice starts nothing new. The run's data is shaped like an event
(`{{trigger.data.object.amount}}`), so steps read the same as in event workflows.
"""

from django.utils.translation import gettext_lazy as _

from automations import catalog
from automations.engine import keys
from automations.models import TriggerKind, Workflow
from automations.problems import Problem
from automations.triggers import Trigger

COLUMNS = {"object": "object_type"}
PARAM = "object"
label = _("Run on selected objects")
# The Stripe objects whose admin lists offer "Run workflow on selected…".
OBJECTS = {
    "charge": _("Charges"),
    "payment_intent": _("Payment intents"),
    "customer": _("Customers"),
    "subscription": _("Subscriptions"),
    "invoice": _("Invoices"),
}


def choices():
    return [(str(label), [(name, str(plural)) for name, plural in OBJECTS.items()])]


def validate(trigger):
    obj = trigger.get("object")
    if not obj:
        return [Problem("trigger.object", "object_required")]
    if not isinstance(obj, str) or obj not in OBJECTS:
        return [Problem("trigger.object", "object_unknown", {"object": obj})]
    return []


def fields(trigger):
    return catalog.object_fields(trigger.get("object") or "")


def describe(trigger):
    return f"{trigger.get('object')} objects"


def title(trigger):
    return f"{label}: {OBJECTS.get(trigger.get('object'), trigger.get('object'))}"


def starts_on(trigger, data):
    return data.get("data", {}).get("object", {}).get("object") == trigger.get("object")


def samples(trigger, limit):
    found = model(trigger.get("object"))
    if found is None:
        return []
    return list(found.objects.order_by("-created").values_list("id", "created")[:limit])


def sample(trigger, subject_id):
    objects = load(trigger.get("object"), [subject_id])
    return data_for(objects[0], trigger["object"]) if objects else None


def workflows_for(object_name):
    """Return the active manual workflows for one kind of object, as plain dicts."""
    return [
        {"id": pk, "name": name}
        for pk, name in Workflow.objects.filter(
            status=Workflow.Status.ACTIVE,
            active_version__isnull=False,
            trigger_kind=TriggerKind.MANUAL,
            object_type=object_name,
        )
        .order_by("name")
        .values_list("pk", "name")
    ]


def candidates(trigger):
    workflow = (
        Workflow.objects.filter(
            pk=trigger.workflow_id,
            status=Workflow.Status.ACTIVE,
            trigger_kind=TriggerKind.MANUAL,
            object_type=trigger.data.get("data", {}).get("object", {}).get("object"),
        )
        .select_related("active_version")
        .first()
    )
    if workflow is None or workflow.active_version is None:
        return []
    return [
        (workflow.pk, workflow.active_version_id, workflow.active_version.definition["conditions"])
    ]


def data_for(obj, object_name):
    """Return the event-shaped snapshot of one object (its Stripe data)."""
    obj = {**obj, "object": obj.get("object") or object_name}
    return {"object": "kanri.manual", "type": f"manual.{object_name}", "data": {"object": obj}}


def trigger_for(workflow_id, obj, object_name, token, user_id=None, *, once=False, batch_id=None):
    """Return the Trigger that runs one workflow on one object, for one confirmed request.

    With `once`, the key names the object only: whatever the request, the workflow runs
    on it at most once (money-moving workflows: selecting a charge again credits nothing).
    """
    key = keys.manual_key(obj["id"], None if once else token)
    return Trigger(
        kind=TriggerKind.MANUAL,
        key=key,
        data={"id": key, **data_for(obj, object_name)},
        label=obj["id"],
        started_by=user_id,
        workflow_id=workflow_id,
        batch_id=batch_id,
    )


# dj-stripe keeps each object as Stripe sent it in `stripe_data`.
MODELS = {
    "charge": "djstripe.Charge",
    "payment_intent": "djstripe.PaymentIntent",
    "customer": "djstripe.Customer",
    "subscription": "djstripe.Subscription",
    "invoice": "djstripe.Invoice",
}


def model(object_name):
    from django.apps import apps

    dotted = MODELS.get(object_name)
    return apps.get_model(dotted) if dotted else None


def load(object_name, object_ids):
    """Return the stored Stripe data of objects by id, in the order asked, as plain dicts."""
    found = model(object_name)
    if found is None:
        return []
    ids = [str(i) for i in object_ids]
    rows = dict(found.objects.filter(id__in=ids).values_list("id", "stripe_data"))
    return [{**(rows[i] or {}), "id": i} for i in ids if i in rows]
