"""The fake Stripe API's store-credit objects (customer balance transactions, coupons,
promotion codes), driven through the real stripe SDK client Kanri uses, so the store-credit
actions are tested against the shapes and errors Stripe really has."""

import time

import pytest
import stripe

from integrations import stripe_client
from integrations.stripe_events import as_dict
from tests.builders import create_customer

PINNED_VERSION = stripe._api_version._ApiVersion.CURRENT


@pytest.fixture
def client(fake_stripe):
    return stripe_client.get_client()


def post(client, path, params, **options):
    return client.raw_request("post", path, **params, **options).data


def get(client, path, **params):
    return client.raw_request("get", path, **params).data


def test_the_sdk_is_pinned_to_an_api_version_with_polymorphic_promotion_codes():
    # Promotion codes name their coupon as promotion[coupon] from 2025-09-30.clover; the
    # store-credit action sends that shape because this is the version the SDK sends.
    assert PINNED_VERSION == "2026-08-26.dahlia"


def test_a_balance_transaction_credits_the_customer_and_is_listed(client, fake_stripe):
    customer = create_customer()

    made = as_dict(
        client.v1.customers.balance_transactions.create(
            customer["id"],
            params={
                "amount": -1500,
                "currency": "jpy",
                "description": "Store credit for ch_1",
                "metadata": {"booking_id": "B-7"},
            },
        )
    )

    assert made["id"].startswith("cbtxn_")
    assert {k: made[k] for k in ("object", "amount", "currency", "customer", "type")} == {
        "object": "customer_balance_transaction",
        "amount": -1500,
        "currency": "jpy",
        "customer": customer["id"],
        "type": "adjustment",
    }
    assert (made["description"], made["metadata"], made["ending_balance"]) == (
        "Store credit for ch_1",
        {"booking_id": "B-7"},
        -1500,
    )
    assert as_dict(client.v1.customers.retrieve(customer["id"]))["balance"] == -1500
    listed = as_dict(client.v1.customers.balance_transactions.list(customer["id"]))
    assert [t["id"] for t in listed["data"]] == [made["id"]]
    assert (listed["has_more"], listed["object"]) == (False, "list")
    again = client.v1.customers.balance_transactions.retrieve(customer["id"], made["id"])
    assert as_dict(again) == made


def test_balance_transactions_list_newest_first_and_page(client):
    customer = create_customer()
    ids = [
        post(
            client,
            f"/v1/customers/{customer['id']}/balance_transactions",
            {"amount": -100 * n, "currency": "usd"},
        )["id"]
        for n in (1, 2, 3)
    ]

    first = get(client, f"/v1/customers/{customer['id']}/balance_transactions", limit=2)
    rest = get(
        client,
        f"/v1/customers/{customer['id']}/balance_transactions",
        limit=2,
        starting_after=first["data"][-1]["id"],
    )

    assert [t["id"] for t in first["data"]] == [ids[2], ids[1]]
    assert first["has_more"] is True
    assert [t["id"] for t in rest["data"]] == [ids[0]]
    assert rest["has_more"] is False
    assert as_dict(client.v1.customers.retrieve(customer["id"]))["balance"] == -600


def test_a_balance_transaction_for_an_unknown_customer_is_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.balance_transactions.create(
            "cus_missing", params={"amount": -100, "currency": "usd"}
        )

    assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as listed:
        client.v1.customers.balance_transactions.list("cus_missing")
    assert listed.value.code == "resource_missing"


def test_a_balance_is_kept_in_one_currency(client):
    customer = create_customer()
    post(
        client,
        f"/v1/customers/{customer['id']}/balance_transactions",
        {"amount": -100, "currency": "jpy"},
    )

    with pytest.raises(stripe.InvalidRequestError) as raised:
        post(
            client,
            f"/v1/customers/{customer['id']}/balance_transactions",
            {"amount": -100, "currency": "usd"},
        )

    assert (raised.value.http_status, raised.value.code) == (400, "invalid_currency")
    assert as_dict(client.v1.customers.retrieve(customer["id"]))["balance"] == -100


def test_a_balance_transaction_replays_for_the_same_idempotency_key(client, fake_stripe):
    customer = create_customer()
    path = f"/v1/customers/{customer['id']}/balance_transactions"
    params = {"amount": -500, "currency": "usd", "metadata": {"kanri_step": "k-1"}}

    first = post(client, path, params, idempotency_key="kanri-1-2-credit-balance")
    second = post(client, path, params, idempotency_key="kanri-1-2-credit-balance")

    assert first == second
    assert as_dict(client.v1.customers.retrieve(customer["id"]))["balance"] == -500
    sent = fake_stripe.requests(path=path, method="POST")
    assert [(r["idempotency_key"], r.get("replayed", False)) for r in sent] == [
        ("kanri-1-2-credit-balance", False),
        ("kanri-1-2-credit-balance", True),
    ]
    assert sent[0]["params"] == {
        "amount": "-500",
        "currency": "usd",
        "metadata[kanri_step]": "k-1",
    }
    assert len(get(client, path)["data"]) == 1


def test_an_injected_fault_fails_a_balance_transaction_once(client, fake_stripe):
    customer = create_customer()
    path = f"/v1/customers/{customer['id']}/balance_transactions"
    fake_stripe.fail(path, status=500, times=1)

    with pytest.raises(stripe.APIError) as raised:
        post(client, path, {"amount": -100, "currency": "usd"})
    made = post(client, path, {"amount": -100, "currency": "usd"})

    assert raised.value.http_status == 500
    assert [t["id"] for t in get(client, path)["data"]] == [made["id"]]
    assert [r.get("fault") for r in fake_stripe.requests(path=path, method="POST")] == [500, None]


def test_a_coupon_takes_an_amount_off_in_a_currency_once(client):
    coupon = as_dict(
        client.v1.coupons.create(
            params={
                "amount_off": 1500,
                "currency": "jpy",
                "duration": "once",
                "max_redemptions": 1,
                "name": "Store credit",
                "metadata": {"booking_id": "B-7"},
            }
        )
    )

    assert coupon["id"]  # Stripe makes one up when none is given
    assert {
        k: coupon[k]
        for k in ("object", "amount_off", "currency", "duration", "max_redemptions", "name")
    } == {
        "object": "coupon",
        "amount_off": 1500,
        "currency": "jpy",
        "duration": "once",
        "max_redemptions": 1,
        "name": "Store credit",
    }
    assert (coupon["metadata"], coupon["times_redeemed"], coupon["valid"]) == (
        {"booking_id": "B-7"},
        0,
        True,
    )
    assert as_dict(client.v1.coupons.retrieve(coupon["id"])) == coupon


def test_a_coupon_with_an_id_of_ours_exists_only_once(client):
    params = {"id": "kanri-1-2-credit", "amount_off": 100, "currency": "usd", "duration": "once"}
    client.v1.coupons.create(params=params)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.coupons.create(params=params)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.coupons.retrieve("kanri-9-9-none")

    assert (raised.value.http_status, raised.value.code) == (400, "resource_already_exists")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


def test_a_promotion_code_is_restricted_to_one_customer_and_found_by_code(client, fake_stripe):
    customer = create_customer()
    coupon = client.v1.coupons.create(
        params={"amount_off": 1500, "currency": "jpy", "duration": "once", "max_redemptions": 1}
    )
    expires_at = int(time.time()) + 365 * 86400

    made = as_dict(
        client.v1.promotion_codes.create(
            params={
                "promotion": {"type": "coupon", "coupon": coupon.id},
                "customer": customer["id"],
                "expires_at": expires_at,
                "max_redemptions": 1,
                "metadata": {"booking_id": "B-7"},
            }
        )
    )

    assert made["id"].startswith("promo_")
    assert made["code"].isalnum() and len(made["code"]) == 8  # made up, as Stripe does
    assert {
        k: made[k]
        for k in ("object", "active", "promotion", "customer", "expires_at", "max_redemptions")
    } == {
        "object": "promotion_code",
        "active": True,
        "promotion": {"type": "coupon", "coupon": coupon.id},
        "customer": customer["id"],
        "expires_at": expires_at,
        "max_redemptions": 1,
    }
    assert (made["metadata"], made["times_redeemed"], "coupon" in made) == (
        {"booking_id": "B-7"},
        0,
        False,
    )
    assert as_dict(client.v1.promotion_codes.retrieve(made["id"])) == made
    by_code = as_dict(client.v1.promotion_codes.list(params={"code": made["code"].lower()}))
    assert [p["id"] for p in by_code["data"]] == [made["id"]]
    by_coupon = as_dict(client.v1.promotion_codes.list(params={"coupon": coupon.id}))
    assert [p["id"] for p in by_coupon["data"]] == [made["id"]]
    assert as_dict(client.v1.promotion_codes.list(params={"code": "NOPE"}))["data"] == []
    [sent] = fake_stripe.requests(path="/v1/promotion_codes", method="POST")
    assert sent["stripe_version"] == PINNED_VERSION
    assert sent["params"] == {
        "promotion[type]": "coupon",
        "promotion[coupon]": coupon.id,
        "customer": customer["id"],
        "expires_at": str(expires_at),
        "max_redemptions": "1",
        "metadata[booking_id]": "B-7",
    }


def test_a_promotion_code_names_its_coupon_the_old_way_on_older_api_versions(client):
    coupon = client.v1.coupons.create(
        params={"amount_off": 500, "currency": "usd", "duration": "once"}
    )
    old = "2025-03-31.basil"

    made = post(
        client, "/v1/promotion_codes", {"coupon": coupon.id, "code": "THANKS"}, stripe_version=old
    )
    with pytest.raises(stripe.InvalidRequestError) as refused:
        post(client, "/v1/promotion_codes", {"coupon": coupon.id, "code": "AGAIN"})

    assert (made["code"], made["coupon"]["id"], made["coupon"]["amount_off"]) == (
        "THANKS",
        coupon.id,
        500,
    )
    assert "promotion" not in made
    assert (refused.value.http_status, refused.value.code) == (400, "parameter_unknown")


def test_promotion_codes_refuse_an_unknown_coupon_or_customer_a_past_expiry_and_a_taken_code(
    client,
):
    customer = create_customer()
    coupon = client.v1.coupons.create(
        params={"amount_off": 500, "currency": "usd", "duration": "once", "max_redemptions": 1}
    )
    promotion = {"type": "coupon", "coupon": coupon.id}
    client.v1.promotion_codes.create(params={"promotion": promotion, "code": "TAKEN"})

    def refused(**params):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.promotion_codes.create(params={"promotion": promotion, **params})
        return raised.value.http_status, raised.value.code

    assert refused(promotion={"type": "coupon", "coupon": "nope"}) == (400, "resource_missing")
    assert refused(customer="cus_missing") == (400, "resource_missing")
    assert refused(expires_at=int(time.time()) - 60) == (400, None)
    assert refused(max_redemptions=2) == (400, None)  # more than the coupon allows
    assert refused(code="taken") == (400, "resource_already_exists")
    # The same code for one customer is another code.
    other = client.v1.promotion_codes.create(
        params={"promotion": promotion, "code": "TAKEN", "customer": customer["id"]}
    )
    assert other.customer == customer["id"]


def test_a_promotion_code_can_be_deactivated(client):
    coupon = client.v1.coupons.create(
        params={"amount_off": 500, "currency": "usd", "duration": "once"}
    )
    made = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}}
    )

    client.v1.promotion_codes.update(made.id, params={"active": False})

    assert client.v1.promotion_codes.retrieve(made.id).active is False
    active = client.v1.promotion_codes.list(params={"active": True})
    assert [p.id for p in active.data] == []


def test_a_seeded_object_takes_metadata_updates_as_stripe_merges_them(client, fake_stripe):
    charge = {"id": "ch_seeded1", "object": "charge", "metadata": {"booking_id": "B-7"}}
    fake_stripe.seed(charge)

    updated = post(
        client,
        "/v1/charges/ch_seeded1",
        {"metadata": {"kanri_credit": "cbtxn_1", "booking_id": "B-7", "old": ""}},
        idempotency_key="kanri-1-2-mark",
    )

    assert updated["metadata"] == {"booking_id": "B-7", "kanri_credit": "cbtxn_1"}
    assert get(client, "/v1/charges/ch_seeded1")["metadata"] == updated["metadata"]
