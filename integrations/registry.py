"""Action kinds -> classes, imported on first use."""

from functools import cache

from django.utils.module_loading import import_string

ACTIONS = {
    "email.send": "integrations.email_actions.SendEmail",
    "slack.post_message": "integrations.slack_actions.PostMessage",
    "stripe.retrieve_charge": "integrations.stripe_actions.RetrieveCharge",
    "stripe.create_refund": "integrations.stripe_actions.CreateRefund",
    "stripe.update_customer_metadata": "integrations.stripe_actions.UpdateCustomerMetadata",
    "stripe.retrieve_subscription": "integrations.stripe_actions.RetrieveSubscription",
    "stripe.store_credit": "integrations.stripe_actions.StoreCredit",
    "stripe.update_charge_metadata": "integrations.stripe_actions.UpdateChargeMetadata",
    "webhook.post": "integrations.webhook_actions.PostWebhook",
}


class UnknownAction(LookupError):
    pass


def get_action(kind):
    """Return the Action class registered for `kind`, or raise UnknownAction."""
    if not isinstance(kind, str):
        raise UnknownAction(f"Unknown action {kind!r}.")
    return _load(kind)


@cache
def _load(kind):
    """Return the Action class registered for `kind`."""
    try:
        return import_string(ACTIONS[kind])
    except (KeyError, TypeError):  # TypeError: a kind that is not even a string
        raise UnknownAction(f"Unknown action {kind!r}.") from None


def choices():
    return [(kind, get_action(kind).label) for kind in ACTIONS]
