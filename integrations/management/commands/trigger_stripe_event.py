from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from djstripe.models import WebhookEndpoint

from integrations.devstack.sample_events import (
    DEFAULT_PRODUCT,
    OBJECTS,
    NeedsFakeStripe,
    known,
    sample_event,
)
from integrations.management.commands.setup_local import LOCAL_ENDPOINT_ID
from integrations.stripe_events import post_event


class Command(BaseCommand):
    help = _(
        "Post a realistic signed Stripe event of any type to a Kanri webhook endpoint, like "
        "`stripe trigger`, after making the objects it refers to (and its customer) in the "
        "local fake Stripe API, so that the mirror's sync of the event succeeds."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "event_type",
            help=_("A Stripe event type, e.g. customer.subscription.deleted. Objects: %(objects)s.")
            % {"objects": ", ".join(OBJECTS)},
        )
        parser.add_argument("--endpoint", default=LOCAL_ENDPOINT_ID, help=_("WebhookEndpoint id"))
        parser.add_argument(
            "--amount", type=int, default=150000, help=_("Minor units (cents; yen are whole)")
        )
        parser.add_argument("--currency", default="usd")
        parser.add_argument("--email", default="taro@example.test")
        parser.add_argument("--name", default="Taro Yamada")
        parser.add_argument(
            "--product",
            default=DEFAULT_PRODUCT,
            help=_("The product a subscription is for (made in the fake with this id)."),
        )
        parser.add_argument("--product-name", default="Kanri Pro")

    def handle(self, *args, event_type, endpoint, **options):
        if not known(event_type):
            raise CommandError(
                _t("Cannot make a %(type)s event: its object is none of %(objects)s.")
                % {"type": event_type, "objects": ", ".join(OBJECTS)}
            )
        row = WebhookEndpoint.objects.filter(id=endpoint).first()
        if row is None:
            raise CommandError(
                _t("No webhook endpoint %(id)r; run `manage.py setup_local`.") % {"id": endpoint}
            )
        try:
            event = sample_event(event_type, options)
        except NeedsFakeStripe as e:
            raise CommandError(
                _t("A %(type)s event needs the local fake Stripe API (STRIPE_API_HOST): %(error)s")
                % {"type": event_type, "error": e}
            ) from None
        status, body = post_event(row.url, event, row.secret)
        if status != 200:
            raise CommandError(
                _t("%(url)s answered %(status)s: %(body)s")
                % {"url": row.url, "status": status, "body": body}
            )
        obj = event["data"]["object"]
        self.stdout.write(
            _t("Sent %(type)s %(event)s for %(object)s: %(status)s %(body)s")
            % {
                "type": event_type,
                "event": event["id"],
                "object": obj.get("id") or obj["object"],
                "status": status,
                "body": body,
            }
        )
