"""The rows a Kanri install has, and the one workflow under test (a Django program).

    python -m kanri_bench.setup_kanri      (Kanri's environment; PYTHONPATH: checkout, benchmarks/)

Made as tests/conftest.py's stripe_account fixture makes them: the dj-stripe Account,
APIKey and WebhookEndpoint (signing secret: loadgen's default), and one active workflow:
on payment_intent.succeeded where amount > 1000 USD, post `Paid {{trigger.id}}` to Slack.
Idempotent; any other active workflow is paused, so a reused database never posts twice.
Prints one line `BENCH-SETUP {"path": …, "workflow": …}`.
"""

import json
import os

ACCOUNT_ID = "acct_kanri_local"  # what the fake Stripe answers for GET /v1/account
ENDPOINT_ID = "we_kanri_bench"
WORKFLOW_NAME = "Bench: notify Slack on paid"


def setup(secret):
    from django.conf import settings
    from django.urls import reverse
    from djstripe.models import Account, APIKey, WebhookEndpoint

    from automations import workflows
    from automations.models import Workflow

    account, _ = Account.objects.get_or_create(id=ACCOUNT_ID, defaults={"livemode": False})
    if not APIKey.objects.filter(secret=settings.STRIPE_SECRET_KEY).exists():
        APIKey.objects.create(
            secret=settings.STRIPE_SECRET_KEY,
            type="secret",
            livemode=False,
            djstripe_owner_account=account,
        )
    endpoint, _ = WebhookEndpoint.objects.update_or_create(
        id=ENDPOINT_ID,
        defaults={
            "livemode": False,
            "enabled_events": ["*"],
            "secret": secret,
            "status": "enabled",
            "url": "http://127.0.0.1/",
            "djstripe_owner_account": account,
        },
    )
    for other in Workflow.objects.filter(status=Workflow.Status.ACTIVE).exclude(name=WORKFLOW_NAME):
        other.status = Workflow.Status.PAUSED
        other.save()
    workflow = Workflow.objects.filter(name=WORKFLOW_NAME, status=Workflow.Status.ACTIVE).first()
    if workflow is None:
        workflow = workflows.create(
            {
                "name": WORKFLOW_NAME,
                "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
                "conditions": [
                    [
                        {
                            "field": "trigger.data.object.amount",
                            "op": "gt",
                            "value": 1000,
                            "currency": "usd",
                        }
                    ]
                ],
                "steps": [
                    {
                        "name": "notify",
                        "kind": "slack.post_message",
                        "config": {"channel": "C0BENCH", "text": "Paid {{trigger.id}}"},
                    }
                ],
            }
        )
        workflows.activate(workflow)
    path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint.djstripe_uuid})
    return {"path": path, "workflow": workflow.pk}


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from kanri_bench.harness import WEBHOOK_SECRET

    print("BENCH-SETUP " + json.dumps(setup(WEBHOOK_SECRET)), flush=True)
