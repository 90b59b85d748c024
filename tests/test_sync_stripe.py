"""`manage.py sync_stripe`: backfilling the dj-stripe mirror from Stripe's lists, against
the fake Stripe API (localstripe behind tests/fakes/stripe_api.py)."""

import io
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from djstripe.models import (
    Charge,
    Customer,
    Invoice,
    PaymentIntent,
    Price,
    Product,
    Refund,
    Subscription,
)

from automations.models import SyncCursor
from integrations import stripe_sync
from integrations.stripe_client import get_client
from integrations.stripe_events import as_dict
from tests.builders import create_customer, create_payment_intent
from tests.conftest import BASE_DIR

TODAY = datetime.now(UTC).strftime("%Y-%m-%d")
MIDNIGHT = int(datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())


@pytest.fixture
def world(db, fake_stripe, stripe_account, monkeypatch):
    """The fake Stripe and the mirror's account; sleeping recorded, never done."""
    slept = []
    monkeypatch.setattr(stripe_sync, "sleep", slept.append)
    return {"stripe": fake_stripe, "slept": slept}


def sync(*args):
    """Run the command; return (stdout, stderr, the CommandError or None)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("sync_stripe", *args, stdout=out, stderr=err)
    except CommandError as e:
        return out.getvalue(), err.getvalue(), e
    return out.getvalue(), err.getvalue(), None


def lists(fake, path):
    """The list requests the command sent to `path`, as (params, fault status)."""
    return [
        (r["params"], r.get("fault"))
        for r in fake.requests(path=path, method="GET")
        if r["path"] == path
    ]


def price(price_id, product_id, created):
    """A price as Stripe lists it (localstripe has none: it is seeded into the fake)."""
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": "usd",
        "livemode": False,
        "metadata": {},
        "product": product_id,
        "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
        "type": "recurring",
        "unit_amount": 1500,
    }


def test_a_first_run_creates_the_objects_and_a_restart_updates_them(world):
    fake = world["stripe"]
    customers = [create_customer(email=f"c{i}@example.test") for i in range(2)]
    intent = create_payment_intent(amount=2500)  # with its own customer and its charge

    out, err, error = sync("--types", "customer,charge", "--since", TODAY)

    assert error is None and err == ""
    assert out.splitlines() == [
        "customer: 3",
        "customer: 3 listed (3 created, 0 updated, 0 failed)",
        "charge: 1",
        "charge: 1 listed (1 created, 0 updated, 0 failed)",
        "Synced 4 objects: 4 created, 0 updated, 0 failed",
    ]
    assert set(Customer.objects.values_list("id", flat=True)) == {
        customers[0]["id"],
        customers[1]["id"],
        intent["customer"],
    }
    assert Charge.objects.get().id == intent["latest_charge"]
    assert Charge.objects.get().amount == 25  # dj-stripe's mapping: a decimal of major units
    assert lists(fake, "/v1/customers") == [({"limit": "100", "created[gte]": str(MIDNIGHT)}, None)]
    cursor = SyncCursor.objects.get(object_type="customer")
    assert (cursor.since, cursor.last_id, cursor.complete) == (
        datetime.fromtimestamp(MIDNIGHT, UTC),
        customers[0]["id"],  # Stripe lists newest first: the oldest comes last
        True,
    )
    assert (cursor.created, cursor.updated, cursor.failed) == (3, 0, 0)

    out, err, error = sync("--types", "customer,charge", "--since", TODAY, "--restart")

    assert error is None
    assert out.splitlines()[-1] == "Synced 4 objects: 0 created, 4 updated, 0 failed"
    assert Customer.objects.count() == 3 and Charge.objects.count() == 1
    cursor.refresh_from_db()
    assert (cursor.created, cursor.updated, cursor.complete) == (0, 3, True)


def test_a_finished_type_is_not_listed_again_unless_the_date_changes(world):
    fake = world["stripe"]
    create_customer()
    sync("--types", "customer", "--since", TODAY)

    out, _err, error = sync("--types", "customer", "--since", TODAY)

    assert error is None
    assert out.splitlines() == [
        "customer: already synced (use --restart to list again)",
        "Synced 0 objects: 0 created, 0 updated, 0 failed",
    ]
    assert len(lists(fake, "/v1/customers")) == 1

    out, _err, error = sync("--types", "customer", "--since", "2026-01-01")

    assert error is None
    assert out.splitlines()[-1] == "Synced 1 objects: 0 created, 1 updated, 0 failed"
    assert lists(fake, "/v1/customers")[-1] == (
        {"limit": "100", "created[gte]": str(int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()))},
        None,
    )


def test_only_objects_created_since_the_date_are_listed(world):
    product = as_dict(get_client().v1.products.create(params={"name": "Gold"}))
    world["stripe"].seed(
        price(
            "price_october", product["id"], int(datetime(2026, 10, 31, 23, tzinfo=UTC).timestamp())
        ),
        price("price_november", product["id"], int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())),
    )

    _out, _err, error = sync("--types", "price", "--since", "2026-11-01")

    assert error is None
    assert list(Price.objects.values_list("id", flat=True)) == ["price_november"]
    assert Price.objects.get().product_id == product["id"]  # its product fetched and synced
    assert lists(world["stripe"], "/v1/prices") == [
        (
            {
                "limit": "100",
                "created[gte]": str(int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())),
            },
            None,
        )
    ]


def test_every_supported_type_is_written_to_its_djstripe_model(world):
    client = get_client()
    customer = create_customer()
    intent = create_payment_intent(amount=1000, customer=customer["id"])
    refund = as_dict(
        client.v1.refunds.create(params={"charge": intent["latest_charge"], "amount": 300})
    )
    product = as_dict(client.v1.products.create(params={"name": "Gold"}))
    now = int(time.time())
    gold = price("price_gold", product["id"], now)
    world["stripe"].seed(
        gold,
        {
            "id": "sub_gold",
            "object": "subscription",
            "billing_cycle_anchor": now,
            "cancel_at_period_end": False,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": "usd",
            "customer": customer["id"],
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": "si_gold",
                        "object": "subscription_item",
                        "created": now,
                        "metadata": {},
                        "price": gold,
                        "quantity": 1,
                        "subscription": "sub_gold",
                    }
                ],
                "has_more": False,
                "url": "/v1/subscription_items?subscription=sub_gold",
            },
            "livemode": False,
            "metadata": {},
            "start_date": now,
            "status": "active",
        },
        {
            "id": "in_gold",
            "object": "invoice",
            "amount_due": 1500,
            "amount_paid": 1500,
            "amount_remaining": 0,
            "attempt_count": 1,
            "billing_reason": "manual",
            "collection_method": "charge_automatically",
            "created": now,
            "currency": "usd",
            "customer": customer["id"],
            "lines": {
                "object": "list",
                "data": [],
                "has_more": False,
                "url": "/v1/invoices/in_gold/lines",
            },
            "livemode": False,
            "metadata": {},
            "status": "paid",
            "subtotal": 1500,
            "total": 1500,
        },
    )

    out, err, error = sync("--since", TODAY)

    assert error is None and err == ""
    assert out.splitlines()[-1] == "Synced 8 objects: 7 created, 1 updated, 0 failed"
    assert list(Product.objects.values_list("id", flat=True)) == [product["id"]]
    assert list(Price.objects.values_list("id", flat=True)) == ["price_gold"]
    assert list(Customer.objects.values_list("id", flat=True)) == [customer["id"]]
    assert list(PaymentIntent.objects.values_list("id", flat=True)) == [intent["id"]]
    assert list(Charge.objects.values_list("id", flat=True)) == [intent["latest_charge"]]
    # The charge brought its refund along, so listing refunds found it there (updated).
    assert list(Refund.objects.values_list("id", flat=True)) == [refund["id"]]
    assert "refund: 1 listed (0 created, 1 updated, 0 failed)" in out.splitlines()
    assert Subscription.objects.get().customer_id == customer["id"]
    assert Invoice.objects.get().id == "in_gold"
    assert set(SyncCursor.objects.values_list("object_type", "complete")) == {
        (name, True) for name in stripe_sync.TYPES
    }
    assert lists(world["stripe"], "/v1/subscriptions") == [
        ({"limit": "100", "created[gte]": str(MIDNIGHT), "status": "all"}, None)
    ]


def test_an_interrupted_run_resumes_after_the_last_page_it_stored(world, monkeypatch):
    fake = world["stripe"]
    monkeypatch.setattr(stripe_sync, "PAGE_SIZE", 2)
    customers = [create_customer(email=f"c{i}@example.test") for i in range(5)]
    newest_first = [c["id"] for c in reversed(customers)]
    fake.fail("/v1/customers", method="GET", status=500, skip=1)  # the second page fails

    out, err, error = sync("--types", "customer", "--since", TODAY)

    assert str(error) == (
        "Listing customer failed: Stripe 500 APIError: Injected failure. "
        "The cursor is kept: run again to resume."
    )
    assert err.splitlines() == ["Synced 2 objects: 2 created, 0 updated, 0 failed"]
    assert sorted(Customer.objects.values_list("id", flat=True)) == sorted(newest_first[:2])
    cursor = SyncCursor.objects.get(object_type="customer")
    assert (cursor.last_id, cursor.complete, cursor.created) == (newest_first[1], False, 2)

    out, err, error = sync("--types", "customer", "--since", TODAY)

    assert error is None
    assert out.splitlines() == [
        f"customer: resuming after {newest_first[1]}",
        "customer: 3",
        "customer: 3 listed (3 created, 0 updated, 0 failed)",
        "Synced 3 objects: 3 created, 0 updated, 0 failed",
    ]
    assert sorted(Customer.objects.values_list("id", flat=True)) == sorted(newest_first)
    since = str(MIDNIGHT)
    assert lists(fake, "/v1/customers") == [
        ({"limit": "2", "created[gte]": since}, None),
        ({"limit": "2", "created[gte]": since, "starting_after": newest_first[1]}, 500),
        ({"limit": "2", "created[gte]": since, "starting_after": newest_first[1]}, None),
        ({"limit": "2", "created[gte]": since, "starting_after": newest_first[3]}, None),
    ]
    cursor.refresh_from_db()
    assert (cursor.last_id, cursor.complete, cursor.created) == (newest_first[4], True, 5)


def test_a_limit_per_type_stops_early_and_the_next_run_goes_on(world):
    customers = [create_customer(email=f"c{i}@example.test") for i in range(3)]

    out, _err, error = sync("--types", "customer", "--limit-per-type", "2")

    assert error is None
    assert "customer: 2 listed (2 created, 0 updated, 0 failed), more to come" in out
    assert lists(world["stripe"], "/v1/customers") == [({"limit": "2", "created[gte]": "0"}, None)]

    out, _err, error = sync("--types", "customer", "--limit-per-type", "2")

    assert out.splitlines()[-1] == "Synced 1 objects: 1 created, 0 updated, 0 failed"
    assert Customer.objects.count() == 3
    assert lists(world["stripe"], "/v1/customers")[-1] == (
        {"limit": "2", "created[gte]": "0", "starting_after": customers[1]["id"]},
        None,
    )
    assert SyncCursor.objects.get(object_type="customer").complete is True


def test_a_rate_limited_page_waits_as_long_as_retry_after_says_then_goes_on(world):
    create_customer()
    world["stripe"].fail(
        "/v1/customers",
        method="GET",
        status=429,
        type="invalid_request_error",
        code="rate_limit",
        message="Too many requests",
        headers={"Retry-After": "7"},
    )

    out, _err, error = sync("--types", "customer", "--since", TODAY)

    assert error is None
    assert world["slept"] == [7]
    assert out.splitlines()[-1] == "Synced 1 objects: 1 created, 0 updated, 0 failed"
    params = {"limit": "100", "created[gte]": str(MIDNIGHT)}
    assert lists(world["stripe"], "/v1/customers") == [(params, 429), (params, None)]


def test_without_retry_after_a_429_backs_off_exponentially_up_to_the_cap(world, monkeypatch):
    monkeypatch.setattr(stripe_sync, "BACKOFF_CAP", 5)
    create_customer()
    world["stripe"].fail("/v1/customers", method="GET", status=429, times=5)

    _out, _err, error = sync("--types", "customer")

    assert error is None
    assert world["slept"] == [1, 2, 4, 5, 5]
    assert Customer.objects.count() == 1


def test_a_429_that_never_ends_fails_the_command_and_keeps_the_cursor(world, monkeypatch):
    monkeypatch.setattr(stripe_sync, "MAX_RATE_LIMITED", 2)
    create_customer()
    world["stripe"].fail("/v1/customers", method="GET", status=429, times=10)

    _out, err, error = sync("--types", "customer")

    assert str(error).startswith(
        "Listing customer failed: Stripe kept answering 429 (rate limited) 3 times:"
    )
    assert world["slept"] == [1, 2]
    assert err.splitlines() == ["Synced 0 objects: 0 created, 0 updated, 0 failed"]
    cursor = SyncCursor.objects.get(object_type="customer")
    assert (cursor.last_id, cursor.complete) == ("", False)
    assert Customer.objects.count() == 0


def test_an_object_that_fails_is_reported_by_id_and_the_rest_are_synced(world):
    product = as_dict(get_client().v1.products.create(params={"name": "Gold"}))
    now = int(time.time())
    world["stripe"].seed(
        price("price_good", product["id"], now),
        price("price_orphan", "prod_gone", now),  # its product cannot be fetched
    )

    _out, err, error = sync("--types", "price")

    assert str(error) == (
        "1 object(s) failed to sync (listed above). The cursor has moved past them: "
        "run again with --restart to retry them."
    )
    lines = err.splitlines()
    # dj-stripe gives up on the product it cannot fetch and fails on the empty column.
    assert lines[0].startswith("price price_orphan failed: DoesNotExist: ")
    assert "<- IntegrityError: " in lines[0] and "product_id" in lines[0]
    assert lines[-1] == "Synced 2 objects: 1 created, 0 updated, 1 failed"
    assert list(Price.objects.values_list("id", flat=True)) == ["price_good"]
    cursor = SyncCursor.objects.get(object_type="price")
    assert (cursor.created, cursor.failed, cursor.complete) == (1, 1, True)


def test_an_unknown_type_is_refused_with_the_known_ones_listed(world):
    _out, _err, error = sync("--types", "customer,coupon,payout")

    assert str(error) == (
        "Unknown type(s): coupon, payout. Known types: product, price, customer, "
        "payment_intent, charge, refund, subscription, invoice."
    )
    assert world["stripe"].requests() == []
    assert SyncCursor.objects.count() == 0


def test_a_since_that_is_not_a_date_is_refused(world):
    _out, _err, error = sync("--since", "last tuesday")

    assert (
        str(error) == "--since 'last tuesday' is not a date (YYYY-MM-DD) or an ISO date and time."
    )
    assert world["stripe"].requests() == []


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_progress_bar_and_a_pipe_gets_plain_lines(world):
    create_customer()
    piped = io.StringIO()
    call_command("sync_stripe", "--types", "customer", stdout=piped)
    tty = Terminal()
    call_command("sync_stripe", "--types", "customer", "--restart", stdout=tty)

    assert "\r" not in piped.getvalue() and "it/s" not in piped.getvalue()
    assert piped.getvalue().splitlines()[0] == "customer: 1"
    assert "\r" in tty.getvalue()  # tqdm redraws its bar in place
    assert "customer: 1" not in tty.getvalue().splitlines()


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("sync_stripe", "--help")

    assert exited.value.code == 0
    assert (
        "manage.py sync_stripe --types customer,charge --since 2026-11-01"
        in capsys.readouterr().out
    )


def test_manage_py_exits_1_with_the_message_on_an_unknown_type():
    done = subprocess.run(
        [sys.executable, "manage.py", "sync_stripe", "--types", "coupon"],
        cwd=BASE_DIR,
        env={**os.environ, "ENV_FILE": "", "DEBUG": "on"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    assert done.stderr.strip().startswith("CommandError: Unknown type(s): coupon. Known types:")
