import json
import secrets
import time
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from djstripe.models import WebhookEndpoint

from integrations.management.commands.setup_local import LOCAL_ENDPOINT_ID
from integrations.stripe_client import get_client
from integrations.stripe_events import as_dict, build_event, post_event


def customer_created(client, options):
    customer = client.v1.customers.create(
        params={"email": options["email"], "name": options["name"]}
    )
    return as_dict(customer)


def payment_intent_succeeded(client, options):
    customer = client.v1.customers.create(
        params={"email": options["email"], "name": options["name"]}
    )
    intent = as_dict(
        client.v1.payment_intents.create(
            params={
                "amount": options["amount"],
                "currency": options["currency"],
                "customer": customer.id,
                "payment_method": "pm_card_visa",
                "confirm": True,
            }
        )
    )
    # Stripe sends latest_charge as an id; the local fake expands it.
    if isinstance(intent.get("latest_charge"), dict):
        intent["latest_charge"] = intent["latest_charge"]["id"]
    return intent


def early_fraud_warning_created(client, options):
    """Only against the local fake: Stripe's own test mode cannot create these on demand."""
    intent = payment_intent_succeeded(client, options)
    warning = {
        "id": "issfr_" + secrets.token_hex(8),
        "object": "radar.early_fraud_warning",
        "actionable": True,
        "charge": intent["latest_charge"],
        "created": int(time.time()),
        "fraud_type": "made_with_stolen_card",
        "livemode": False,
        "payment_intent": intent["id"],
    }
    base = getattr(settings, "STRIPE_API_HOST", "")
    try:
        seed = urllib.request.Request(
            f"{base}/_config/kanri/objects",
            data=json.dumps(warning).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(seed, timeout=5).close()
    except (ValueError, OSError) as e:
        raise CommandError(
            f"Early fraud warnings need the local fake Stripe API (STRIPE_API_HOST): {e}"
        ) from None
    return warning


BUILDERS = {
    "customer.created": customer_created,
    "payment_intent.succeeded": payment_intent_succeeded,
    "radar.early_fraud_warning.created": early_fraud_warning_created,
}


class Command(BaseCommand):
    help = (
        "Create a Stripe object through the configured Stripe API (the local fake in "
        "development) and post the matching signed event to a Kanri webhook endpoint, "
        "like `stripe trigger`."
    )

    def add_arguments(self, parser):
        parser.add_argument("event_type", choices=sorted(BUILDERS))
        parser.add_argument("--endpoint", default=LOCAL_ENDPOINT_ID, help="WebhookEndpoint id")
        parser.add_argument(
            "--amount", type=int, default=150000, help="Minor units (cents; yen are whole)"
        )
        parser.add_argument("--currency", default="usd")
        parser.add_argument("--email", default="taro@example.test")
        parser.add_argument("--name", default="Taro Yamada")

    def handle(self, *args, event_type, endpoint, **options):
        row = WebhookEndpoint.objects.filter(id=endpoint).first()
        if row is None:
            raise CommandError(f"No webhook endpoint {endpoint!r}; run `manage.py setup_local`.")
        obj = BUILDERS[event_type](get_client(), options)
        event = build_event(event_type, obj)
        status, body = post_event(row.url, event, row.secret)
        if status != 200:
            raise CommandError(f"{row.url} answered {status}: {body}")
        self.stdout.write(f"Sent {event_type} {event['id']} for {obj['id']}: {status} {body}")
