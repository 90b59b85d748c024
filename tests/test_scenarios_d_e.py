"""Scenarios D (a cancelled subscription to Slack) and E1-E3 (customer lifecycle emails),
each from a signed webhook POST through django-q2 (inline) to the exact Slack message or
mail, the Stripe requests and the audit rows."""

import pytest

from automations.models import Run, RunStep, Workflow
from automations.templates import (
    cross_sell_after_purchase,
    payment_failed_reminder,
    subscription_canceled_to_slack,
    welcome_new_customers,
)
from integrations import stripe_client
from tests.builders import (
    create_customer,
    create_payment_intent,
    create_workflow,
    event,
    random_id,
)

CHANNEL = "#churn"
MENTION = "<!subteam^S0RETAIN|retention>"
EXPAND = {"expand[0]": "customer", "expand[1]": "items.data.price.product"}


@pytest.fixture
def world(stripe_account, fake_stripe, smtp_server, fake_slack):
    return {"stripe": fake_stripe, "mail": smtp_server, "slack": fake_slack}


def activate(definition):
    return create_workflow(definition, status=Workflow.Status.ACTIVE)


def steps_of(run):
    return list(
        run.steps.order_by("pk").values_list("step_name", "kind", "attempt", "status", "error")
    )


# ---------------------------------------------------------------- D


def product(name="Kanri Pro"):
    return {"id": random_id("prod"), "object": "product", "name": name, "active": True}


def ended_subscription(customer, product_id, unit_amount=2900, currency="usd", **recurring):
    """A subscription as customer.subscription.deleted carries it (API 2026-08-26): ids
    only, the price inline, the period on the item."""
    subscription_id = random_id("sub")
    price = {
        "id": random_id("price"),
        "object": "price",
        "active": True,
        "currency": currency,
        "product": product_id,
        "recurring": {"interval": "month", "interval_count": 1, **recurring},
        "type": "recurring",
        "unit_amount": unit_amount,
    }
    return {
        "id": subscription_id,
        "object": "subscription",
        "customer": customer,
        "status": "canceled",
        "currency": currency,
        "cancel_at_period_end": False,
        "canceled_at": 1764547200,
        "ended_at": 1764547200,
        "cancellation_details": {"reason": "cancellation_requested", "feedback": "too_expensive"},
        "collection_method": "charge_automatically",
        "items": {
            "object": "list",
            "data": [
                {
                    "id": random_id("si"),
                    "object": "subscription_item",
                    "price": price,
                    "quantity": 1,
                    "current_period_end": 1767225600,
                    "subscription": subscription_id,
                }
            ],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "metadata": {},
    }


def expanded_fetches(world, subscription_id):
    """Return the requests for the subscription that asked for an expansion (Kanri's)."""
    requests = world["stripe"].requests(path=f"/v1/subscriptions/{subscription_id}")
    return [r for r in requests if r["params"]]


def cancelled(world, product_name="Kanri Pro", **customer):
    """Seed a customer, a product and their ended subscription; return (product id, event)."""
    made = create_customer(**customer)
    sold = product(product_name)
    subscription = ended_subscription(made["id"], sold["id"])
    world["stripe"].seed(sold, subscription)
    return sold["id"], made, event("customer.subscription.deleted", subscription)


def test_d_a_cancelled_subscription_posts_who_what_and_how_much_to_slack(world, post_event):
    product_id, customer, sent = cancelled(world, email="taro@example.test", name="Taro Yamada")
    subscription = sent["data"]["object"]
    workflow = activate(
        subscription_canceled_to_slack(product=product_id, channel=CHANNEL, mention=MENTION)
    )

    assert post_event(sent).status_code == 200

    assert world["slack"].messages() == [
        {
            "channel": CHANNEL,
            "text": (
                f"{MENTION} A subscription to Kanri Pro has ended.\n"
                "Customer: Taro Yamada (taro@example.test)\n"
                "Plan: $29.00 every 1 month\n"
                f"Subscription: {subscription['id']} "
                f"(customer {customer['id']}, product {product_id})"
            ),
        }
    ]
    # Kanri's one request; the mirror (dj-stripe) fetches the object without parameters.
    [fetch] = expanded_fetches(world, subscription["id"])
    assert (fetch["method"], fetch["params"]) == ("GET", EXPAND)
    run = Run.objects.get()
    assert (run.workflow, run.trigger_key, run.status) == (
        workflow,
        sent["id"],
        Run.Status.SUCCEEDED,
    )
    assert steps_of(run) == [
        ("only_this_product", "branch", 1, "succeeded", ""),
        ("subscription", "stripe.retrieve_subscription", 1, "succeeded", ""),
        ("tell_team", "slack.post_message", 1, "succeeded", ""),
    ]
    retrieved = run.steps.get(step_name="subscription")
    # The audit keeps the exact request: the expansion is part of it.
    assert retrieved.input == {
        "method": "get",
        "path": f"/v1/subscriptions/{subscription['id']}",
        "params": {"expand": ["customer", "items.data.price.product"]},
    }
    assert retrieved.output == {
        "id": subscription["id"],
        "status": "canceled",
        "cancel_at_period_end": False,
        "canceled_at": 1764547200,
        "ended_at": 1764547200,
        "metadata": {},
        "customer": customer["id"],
        "customer_name": "Taro Yamada",
        "customer_email": "taro@example.test",
        "product": product_id,
        "product_name": "Kanri Pro",
        "price": subscription["items"]["data"][0]["price"]["id"],
        "interval": "month",
        "interval_count": 1,
        "amount": 2900,
        "currency": "usd",
        "quantity": 1,
        "current_period_end": 1767225600,
    }
    assert run.steps.get(step_name="tell_team").input == world["slack"].messages()[0]


def test_d_escapes_customer_data_but_keeps_the_templates_mention(world, post_event):
    product_id, _customer, sent = cancelled(
        world, product_name="Pro <b> & more", email="x@example.test", name="<!channel> Bob"
    )
    activate(subscription_canceled_to_slack(product=product_id, channel=CHANNEL, mention=MENTION))

    post_event(sent)

    [message] = world["slack"].messages()
    first, second = message["text"].split("\n")[:2]
    assert first == f"{MENTION} A subscription to Pro &lt;b&gt; &amp; more has ended."
    assert second == "Customer: &lt;!channel&gt; Bob (x@example.test)"


def test_d_another_products_cancellation_takes_the_empty_arm(world, post_event):
    _product_id, _customer, sent = cancelled(world)
    activate(subscription_canceled_to_slack(product="prod_other", channel=CHANNEL))

    post_event(sent)

    run = Run.objects.get()
    assert run.status == Run.Status.SUCCEEDED
    assert steps_of(run) == [("only_this_product", "branch", 1, "succeeded", "")]
    assert run.steps.get().output["arm"] == "else"
    assert world["slack"].messages() == []
    assert expanded_fetches(world, sent["data"]["object"]["id"]) == []


# ---------------------------------------------------------------- E1


def mail_of(world):
    return [
        (sender, recipients, message["Subject"], message.get_content())
        for sender, recipients, message in world["mail"].messages
    ]


def test_e1_a_new_customer_gets_a_welcome_email(world, post_event):
    workflow = activate(welcome_new_customers(shop="Kanri Coffee", url="https://shop.test/"))
    customer = create_customer(email="hanako@example.test", name="Hanako Sato")
    sent = event("customer.created", customer)

    assert post_event(sent).status_code == 200

    assert mail_of(world) == [
        (
            "kanri@localhost",
            ["hanako@example.test"],
            "Welcome to Kanri Coffee",
            "Hello,\n\n"
            "Thank you for joining Kanri Coffee. Your account is ready, and we are glad "
            "to have you.\n\n"
            "Have a look around: https://shop.test/\n\n"
            "If you have a question, just reply to this email.\n",
        )
    ]
    run = Run.objects.get()
    assert (run.workflow, run.status) == (workflow, Run.Status.SUCCEEDED)
    step = run.steps.get()
    assert (step.step_name, step.status) == ("welcome", RunStep.Status.SUCCEEDED)
    assert step.output == {"to": ["hanako@example.test"], "subject": "Welcome to Kanri Coffee"}
    [_sender, _to, message] = world["mail"].messages[0]
    assert message["X-Kanri-Step"] == step.idempotency_key


def test_e1_a_customer_without_an_email_address_starts_no_run(world, post_event):
    activate(welcome_new_customers())
    customer = create_customer(email=None, name="No Mail")

    post_event(event("customer.created", customer))

    assert not Run.objects.exists()
    assert world["mail"].messages == []


# ---------------------------------------------------------------- E2


def test_e2_a_successful_charge_emails_the_customer_a_suggestion(world, post_event):
    activate(cross_sell_after_purchase(shop="Kanri Coffee", offer="our mugs", url="https://m.test"))
    customer = create_customer(email="jiro@example.test", name="Jiro")
    intent = create_payment_intent(amount=4500, currency="usd", customer=customer["id"])
    charge = stripe_client.request("get", f"/v1/charges/{intent['latest_charge']}")

    post_event(event("charge.succeeded", charge))

    assert mail_of(world) == [
        (
            "kanri@localhost",
            ["jiro@example.test"],
            "Thank you for your purchase",
            "Hello,\n\n"
            "Thank you for your payment of $45.00.\n\n"
            "Customers who bought the same often add our mugs: https://m.test\n\n"
            "Kanri Coffee\n",
        )
    ]
    assert Run.objects.get().status == Run.Status.SUCCEEDED


def test_e2_a_guest_charge_starts_no_run(world, post_event):
    activate(cross_sell_after_purchase())
    charge = {
        "id": random_id("ch"),
        "object": "charge",
        "amount": 4500,
        "currency": "usd",
        "customer": None,
        "status": "succeeded",
        "paid": True,
        "metadata": {},
    }

    post_event(event("charge.succeeded", charge))

    assert not Run.objects.exists()
    assert world["mail"].messages == []


# ---------------------------------------------------------------- E3


def failed_invoice(customer, country, amount_due=980, currency="jpy"):
    """An invoice as invoice.payment_failed carries it (localstripe builds none this
    shape); its customer is real, for the email step to look up."""
    invoice_id = random_id("in")
    return {
        "id": invoice_id,
        "object": "invoice",
        "number": "KANRI-0042",
        "customer": customer["id"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_address": {"country": country, "city": None, "postal_code": None},
        "status": "open",
        "currency": currency,
        "amount_due": amount_due,
        "amount_paid": 0,
        "amount_remaining": amount_due,
        "total": amount_due,
        "attempt_count": 1,
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "hosted_invoice_url": f"https://invoice.stripe.test/i/{invoice_id}",
        "metadata": {},
    }


def test_e3_a_failed_payment_in_the_audience_emails_a_reminder(world, post_event):
    activate(payment_failed_reminder(countries=["JP"], shop="Kanri Coffee"))
    customer = create_customer(email="yuki@example.test", name="Yuki")
    invoice = failed_invoice(customer, "JP")
    world["stripe"].seed(invoice)  # for the mirror, which fetches it

    post_event(event("invoice.payment_failed", invoice))

    assert mail_of(world) == [
        (
            "kanri@localhost",
            ["yuki@example.test"],
            "Your payment of ¥980 did not go through",
            "Hello,\n\n"
            "We could not collect the payment for invoice KANRI-0042 (¥980).\n\n"
            "Please update your payment method or pay the invoice here:\n"
            f"https://invoice.stripe.test/i/{invoice['id']}\n\n"
            "We will try again automatically; if you have already sorted it out, "
            "please ignore this email.\n\n"
            "Kanri Coffee\n",
        )
    ]
    run = Run.objects.get()
    assert (run.status, run.trigger_key) == (Run.Status.SUCCEEDED, run.snapshot["id"])


def test_e3_a_customer_outside_the_audience_gets_nothing(world, post_event):
    activate(payment_failed_reminder(countries=["JP"]))
    customer = create_customer(email="sam@example.test", name="Sam")

    post_event(event("invoice.payment_failed", failed_invoice(customer, "US", 1500, "usd")))

    assert not Run.objects.exists()
    assert world["mail"].messages == []
