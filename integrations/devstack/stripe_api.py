"""Fake Stripe API: localstripe on 127.0.0.1, with a thin layer in front.

Run: python -m integrations.devstack.stripe_api PORT

localstripe serves customers, payment intents, charges, refunds, subscriptions and
invoices. The layer in front adds what Kanri needs and localstripe lacks:
- GET /v1/account, and any object seeded through POST /_config/kanri/objects (Radar early
  fraud warnings, disputes, checkout sessions, prices…) at GET /v1/…/<id>, with `expand[]`
  of their ids (a seeded subscription's customer and items.data.price.product);
- Stripe-shaped 404s (code resource_missing), which dj-stripe relies on;
- customer credit balance transactions (POST/GET /v1/customers/<id>/balance_transactions),
  coupons as Stripe takes them (an id made up when none is given, max_redemptions, name,
  redeem_by) and promotion codes (/v1/promotion_codes), for store credit;
- metadata updates of seeded objects (POST /v1/…/<id>), as Stripe merges them;
- Idempotency-Key replay, as Stripe does for 24 hours;
- a log of every /v1 request (GET /_config/kanri/requests), so tests assert what was sent;
- injected failures (POST /_config/kanri/faults), to test retries and error classification;
- lists filtered by created[gte] (customers, charges, prices…), as `sync_stripe` pages them,
  and GET /v1/events over seeded events, as `reconcile_events` pages it;
- POST /_config/kanri/reset empties all of it.
Development and tests only: nothing here talks to the network beyond loopback.
"""

import copy
import json
import re
import secrets
import string
import sys
import time
from urllib.parse import parse_qsl

from aiohttp import web
from localstripe import resources
from localstripe.errors import UserError

# localstripe pickles its store to one fixed /tmp file on every write: parallel runs
# would share it. Keep the store in memory only.
resources.Store.dump_to_disk = lambda self: None

from localstripe.server import app, get_post_data, unflatten_data  # noqa: E402  (builds its routes)

_refund_init = resources.Refund.__init__


def _refund_with_reason(self, reason=None, **kwargs):
    # localstripe refuses Stripe's `reason` parameter; real Stripe accepts and returns it.
    _refund_init(self, **kwargs)
    self.reason = reason


resources.Refund.__init__ = _refund_with_reason

_coupon_init = resources.Coupon.__init__


def _coupon_like_stripe(self, id=None, max_redemptions=None, name=None, redeem_by=None, **kw):
    # localstripe needs an id and refuses max_redemptions, name and redeem_by; Stripe makes
    # an id up and takes them. https://docs.stripe.com/api/coupons/create
    max_redemptions = resources.try_convert_to_int(max_redemptions)
    redeem_by = resources.try_convert_to_int(redeem_by)
    if max_redemptions is not None and (type(max_redemptions) is not int or max_redemptions < 1):
        raise UserError(400, "Invalid max_redemptions: must be a positive integer")
    if redeem_by is not None and type(redeem_by) is not int:
        raise UserError(400, "Invalid redeem_by: must be a timestamp")
    if id is not None and f"coupon:{id}" in resources.store:
        raise UserError(400, "Coupon already exists.", {"code": "resource_already_exists"})
    _coupon_init(self, id=id or resources.random_id(8), **kw)
    self.max_redemptions = max_redemptions
    self.name = name
    self.redeem_by = redeem_by


resources.Coupon.__init__ = _coupon_like_stripe

_customer_init = resources.Customer.__init__


def _customer_with_balance(self, *args, balance=0, **kwargs):
    # localstripe keeps the pre-2019 `account_balance`; Stripe's `balance` is negative
    # when the customer has credit. https://docs.stripe.com/api/customers/object#customer_object-balance
    _customer_init(self, *args, balance=balance, **kwargs)
    self.balance = resources.try_convert_to_int(balance)


resources.Customer.__init__ = _customer_with_balance

ACCOUNT_ID = "acct_kanri_local"

state = {
    "objects": {},
    "requests": [],
    "idempotent": {},
    "faults": [],
    "balance_transactions": {},  # id -> customer balance transaction
    "customer_currency": {},  # customer id -> the currency its balance is kept in
    "promotion_codes": {},  # id -> promotion code (its coupon as an id)
}

# From API version 2025-09-30.clover a promotion code names its coupon as
# promotion[type]=coupon&promotion[coupon]=…, and the top-level `coupon` is gone.
# https://docs.stripe.com/changelog/clover/2025-09-30/polymorphic-coupon
POLYMORPHIC_PROMOTION = "2025-09-30"


def stripe_error(status, message, type_="invalid_request_error", code=None):
    error = {"type": type_, "message": message}
    if code:
        error["code"] = code
    return web.json_response({"error": error}, status=status)


def _account():
    return {
        "id": ACCOUNT_ID,
        "object": "account",
        "business_profile": {"name": "Kanri local", "support_email": None, "url": None},
        "charges_enabled": True,
        "country": "US",
        "created": 1700000000,
        "default_currency": "usd",
        "details_submitted": True,
        "email": "ops@example.test",
        "payouts_enabled": True,
        "settings": {"dashboard": {"display_name": "Kanri local", "timezone": "UTC"}},
        "type": "standard",
        "metadata": {},
    }


def _take_fault(method, path):
    for fault in state["faults"]:
        if fault["method"] == method and path.startswith(fault["path"]) and fault["times"]:
            if fault["skip"]:  # let this many matching requests through first
                fault["skip"] -= 1
                continue
            fault["times"] -= 1
            return fault
    return None


@web.middleware
async def kanri_layer(request, handler):
    if not request.path.startswith("/v1/"):
        return await handler(request)

    raw = await request.read()  # aiohttp caches it for the handler
    params = parse_qsl(raw.decode() if raw else request.query_string, keep_blank_values=True)
    entry = {
        "method": request.method,
        "path": request.path,
        "params": dict(params),
        "idempotency_key": request.headers.get("Idempotency-Key"),
        "stripe_version": request.headers.get("Stripe-Version"),
        "at": time.time(),
    }
    state["requests"].append(entry)

    fault = _take_fault(request.method, request.path)
    if fault and not fault["after"]:
        entry["fault"] = fault["status"]
        return _fault_response(fault)

    key = entry["idempotency_key"]
    if request.method == "POST" and key:
        cached = state["idempotent"].get(key)
        if cached:
            if cached["path"] != request.path or cached["params"] != entry["params"]:
                return stripe_error(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters.",
                    "idempotency_error",
                )
            entry["replayed"] = True
            return web.json_response(
                cached["body"], status=cached["status"], headers={"Idempotent-Replayed": "true"}
            )

    route = _credit_route(request.method, request.path)
    seeded = state["objects"].get(request.path.rsplit("/", 1)[-1])
    created_list = _created_list(request)
    if created_list is not None:
        response = created_list
    elif route:
        response = await _answer(route, request)
    elif request.method == "GET" and request.path == "/v1/account":
        response = web.json_response(_account())
    elif request.method == "GET" and seeded is not None:
        response = _expanded(seeded, unflatten_data(request.query).get("expand") or [])
    elif request.method == "POST" and seeded is not None:
        response = await _update_seeded(seeded, request)
    else:
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            response = None
        if response is None or (response.status == 404 and b'"code"' not in (response.body or b"")):
            object_id = request.path.rsplit("/", 1)[-1]
            response = stripe_error(404, f"No such object: '{object_id}'", code="resource_missing")

    if request.method == "POST" and key and response.status < 500:
        state["idempotent"][key] = {
            "path": request.path,
            "params": entry["params"],
            "status": response.status,
            "body": json.loads(response.body),
        }
    if fault:
        # Stripe did the work but the answer was lost (a timeout, a 500 on the way back).
        entry["fault"] = fault["status"]
        return _fault_response(fault)
    return response


def _fault_response(fault):
    response = stripe_error(fault["status"], fault["message"], fault["type"], fault.get("code"))
    response.headers.update(fault["headers"])  # e.g. Retry-After on a 429
    return response


# ---------------------------------------------------------------- backfill lists

# The lists `sync_stripe` pages through, by path: the object they hold.
CREATED_LISTS = {
    "/v1/products": "product",
    "/v1/prices": "price",
    "/v1/customers": "customer",
    "/v1/payment_intents": "payment_intent",
    "/v1/charges": "charge",
    "/v1/refunds": "refund",
    "/v1/subscriptions": "subscription",
    "/v1/invoices": "invoice",
}
CREATED_FILTERS = {"gt", "gte", "lt", "lte"}
# `reconcile_events` pages Stripe's event list the same way: events seeded through
# POST /_config/kanri/objects (and any localstripe made) are listed.
CREATED_LISTS["/v1/events"] = "event"
PRODUCT_FEATURES = re.compile(r"^/v1/products/[^/]+/features$")


def _created_list(request):
    """Answer a list filtered by created[gte|gt|lte|lt] as Stripe does (newest first, paged
    by limit and starting_after), over localstripe's objects and seeded ones; localstripe
    refuses `created` on most lists and has no prices. Other lists return None."""
    if request.method == "GET" and PRODUCT_FEATURES.match(request.path):
        # dj-stripe lists a synced product's entitlement features; this fake has none.
        return web.json_response(_list(request.path, [], {}))
    kind = CREATED_LISTS.get(request.path)
    if request.method != "GET" or kind is None or "created" not in request.query_string:
        return None
    query = unflatten_data(request.query) or {}
    created = query.get("created")
    if (
        set(query) - {"created", "limit", "starting_after", "status"}
        or not isinstance(created, dict)
        or set(created) - CREATED_FILTERS
        or query.get("status", "all") != "all"
    ):
        return stripe_error(400, "This fake lists by created, limit, starting_after only.")
    items = [obj._export() for key, obj in resources.store.items() if key.startswith(kind + ":")]
    items += [obj for obj in state["objects"].values() if obj.get("object") == kind]
    bounds = {op: int(value) for op, value in created.items()}
    keep = {
        "gt": lambda c, v: c > v,
        "gte": lambda c, v: c >= v,
        "lt": lambda c, v: c < v,
        "lte": lambda c, v: c <= v,
    }
    items = [i for i in items if all(keep[op](i["created"], v) for op, v in bounds.items())]
    items.sort(key=lambda i: i["created"])  # stable: same-second objects keep their order
    return web.json_response(_list(request.path, items, query))


# ---------------------------------------------------------------- store credit


def _now():
    return int(time.time())


def _new_id(prefix):
    return prefix + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))


def _list(url, items, query):
    """Return a Stripe list of `items` (given oldest first) newest first, paged by limit
    and starting_after."""
    items = list(reversed(items))
    after = query.get("starting_after")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    limit = int(query.get("limit") or 10)
    return {
        "object": "list",
        "data": items[:limit],
        "has_more": len(items) > limit,
        "url": url,
    }


def _customer(customer_id):
    try:
        return resources.Customer._api_retrieve(customer_id)
    except UserError:
        return None


def _missing(what, object_id, status=404, param=None):
    response = stripe_error(status, f"No such {what}: '{object_id}'", code="resource_missing")
    if param:
        body = json.loads(response.body)
        body["error"]["param"] = param
        response = web.json_response(body, status=status)
    return response


def _int(value):
    value = resources.try_convert_to_int(value)
    return value if type(value) is int else None


def _currency(value):
    return value.lower() if isinstance(value, str) and re.fullmatch(r"[A-Za-z]{3}", value) else None


def _metadata(value):
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in value.items() if v != ""}


async def create_balance_transaction(request, data, customer_id):
    customer = _customer(customer_id)
    if customer is None:
        return _missing("customer", customer_id)
    amount, currency = _int(data.get("amount")), _currency(data.get("currency"))
    metadata = _metadata(data.get("metadata"))
    if not amount or currency is None or metadata is None:
        return stripe_error(400, "amount (a non-zero integer) and currency are required.")
    # The balance is kept in one currency, fixed by the first transaction.
    # https://docs.stripe.com/billing/customer/balance
    kept = state["customer_currency"].setdefault(customer_id, currency)
    if kept != currency:
        return stripe_error(
            400,
            f"The customer's balance is kept in {kept}; a transaction in {currency} "
            "cannot be added to it.",
            code="invalid_currency",
        )
    customer.balance = (customer.balance or 0) + amount
    transaction = {
        "id": _new_id("cbtxn_"),
        "object": "customer_balance_transaction",
        "amount": amount,
        "checkout_session": None,
        "created": _now(),
        "credit_note": None,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "description": data.get("description") or None,
        "ending_balance": customer.balance,
        "invoice": None,
        "livemode": False,
        "metadata": metadata,
        "type": "adjustment",
    }
    state["balance_transactions"][transaction["id"]] = transaction
    return web.json_response(transaction)


async def list_balance_transactions(request, data, customer_id):
    if _customer(customer_id) is None:
        return _missing("customer", customer_id)
    mine = [t for t in state["balance_transactions"].values() if t["customer"] == customer_id]
    return web.json_response(_list(f"/v1/customers/{customer_id}/balance_transactions", mine, data))


async def retrieve_balance_transaction(request, data, customer_id, transaction_id):
    transaction = state["balance_transactions"].get(transaction_id)
    if transaction is None or transaction["customer"] != customer_id:
        return _missing("customer balance transaction", transaction_id)
    return web.json_response(transaction)


def _polymorphic(request):
    version = request.headers.get("Stripe-Version") or ""
    return not version or version[:10] >= POLYMORPHIC_PROMOTION


def _export_promotion_code(code, request):
    out = {key: value for key, value in code.items() if key != "coupon"}
    if _polymorphic(request):
        out["promotion"] = {"type": "coupon", "coupon": code["coupon"]}
    else:
        coupon = resources.store.get(f"coupon:{code['coupon']}")
        out["coupon"] = coupon._export() if coupon else code["coupon"]
    return out


async def create_promotion_code(request, data):
    if _polymorphic(request):
        if "coupon" in data:
            return stripe_error(400, "Received unknown parameter: coupon", code="parameter_unknown")
        promotion = data.get("promotion") or {}
        if not isinstance(promotion, dict) or promotion.get("type") != "coupon":
            return stripe_error(400, "promotion[type] must be coupon.", code="parameter_missing")
        coupon_id, param = promotion.get("coupon"), "promotion[coupon]"
    else:
        if "promotion" in data:
            return stripe_error(
                400, "Received unknown parameter: promotion", code="parameter_unknown"
            )
        coupon_id, param = data.get("coupon"), "coupon"
    coupon = resources.store.get(f"coupon:{coupon_id}") if coupon_id else None
    if coupon is None:
        return _missing("coupon", coupon_id, status=400, param=param)
    customer_id = data.get("customer") or None
    if customer_id and _customer(customer_id) is None:
        return _missing("customer", customer_id, status=400, param="customer")
    expires_at = _int(data.get("expires_at")) if data.get("expires_at") else None
    max_redemptions = _int(data.get("max_redemptions")) if data.get("max_redemptions") else None
    metadata = _metadata(data.get("metadata"))
    if data.get("expires_at") and (expires_at is None or expires_at <= _now()):
        return stripe_error(400, "expires_at must be a timestamp in the future.")
    if data.get("max_redemptions") and (max_redemptions is None or max_redemptions < 1):
        return stripe_error(400, "max_redemptions must be a positive integer.")
    if coupon.max_redemptions and max_redemptions and max_redemptions > coupon.max_redemptions:
        return stripe_error(400, "max_redemptions cannot exceed the coupon's max_redemptions.")
    if metadata is None:
        return stripe_error(400, "Invalid metadata.")
    code = data.get("code") or "".join(
        secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8)
    )
    if not re.fullmatch(r"[A-Za-z0-9-]+", code):
        return stripe_error(400, "A code may hold letters, digits and dashes only.")
    # Codes are unique, whatever their case, among the active codes for one customer.
    for other in state["promotion_codes"].values():
        if (
            other["active"]
            and other["code"].lower() == code.lower()
            and other["customer"] == customer_id
        ):
            return stripe_error(
                400,
                "An active promotion code with this code already exists.",
                code="resource_already_exists",
            )
    promotion_code = {
        "id": _new_id("promo_"),
        "object": "promotion_code",
        "active": True,
        "code": code,
        "coupon": coupon.id,
        "created": _now(),
        "customer": customer_id,
        "customer_account": None,
        "expires_at": expires_at,
        "livemode": False,
        "max_redemptions": max_redemptions,
        "metadata": metadata,
        "restrictions": {
            "currency_options": {},
            "first_time_transaction": False,
            "minimum_amount": None,
            "minimum_amount_currency": None,
        },
        "times_redeemed": 0,
    }
    state["promotion_codes"][promotion_code["id"]] = promotion_code
    return web.json_response(_export_promotion_code(promotion_code, request))


async def retrieve_promotion_code(request, data, promotion_code_id):
    code = state["promotion_codes"].get(promotion_code_id)
    if code is None:
        return _missing("promotion_code", promotion_code_id)
    return web.json_response(_export_promotion_code(code, request))


async def update_promotion_code(request, data, promotion_code_id):
    code = state["promotion_codes"].get(promotion_code_id)
    if code is None:
        return _missing("promotion_code", promotion_code_id)
    if "active" in data:
        code["active"] = str(data["active"]).lower() == "true"
    if "metadata" in data:
        for key, value in (data["metadata"] or {}).items():
            if value == "":
                code["metadata"].pop(key, None)
            else:
                code["metadata"][key] = str(value)
    return web.json_response(_export_promotion_code(code, request))


async def list_promotion_codes(request, data):
    found = [
        code
        for code in state["promotion_codes"].values()
        if (not data.get("code") or code["code"].lower() == str(data["code"]).lower())
        and (not data.get("coupon") or code["coupon"] == data["coupon"])
        and (not data.get("customer") or code["customer"] == data["customer"])
        and ("active" not in data or code["active"] == (str(data["active"]).lower() == "true"))
    ]
    page = _list("/v1/promotion_codes", found, data)
    page["data"] = [_export_promotion_code(code, request) for code in page["data"]]
    return web.json_response(page)


CUSTOMER_BALANCE = r"^/v1/customers/([^/]+)/balance_transactions"
CREDIT_ROUTES = [
    ("POST", re.compile(CUSTOMER_BALANCE + "$"), create_balance_transaction),
    ("GET", re.compile(CUSTOMER_BALANCE + "$"), list_balance_transactions),
    ("GET", re.compile(CUSTOMER_BALANCE + r"/([^/]+)$"), retrieve_balance_transaction),
    ("POST", re.compile(r"^/v1/promotion_codes$"), create_promotion_code),
    ("GET", re.compile(r"^/v1/promotion_codes$"), list_promotion_codes),
    ("GET", re.compile(r"^/v1/promotion_codes/([^/]+)$"), retrieve_promotion_code),
    ("POST", re.compile(r"^/v1/promotion_codes/([^/]+)$"), update_promotion_code),
]


def _credit_route(method, path):
    for route_method, pattern, handler in CREDIT_ROUTES:
        match = pattern.match(path) if route_method == method else None
        if match:
            return handler, match.groups()
    return None


async def _answer(route, request):
    handler, args = route
    if request.method == "POST":
        data = await get_post_data(request) or {}
    else:
        data = unflatten_data(request.query) or {}
    try:
        return await handler(request, data, *args)
    except UserError as e:
        return web.json_response(e.body, status=e.code)


# ---------------------------------------------------------------- expand on seeded objects


def _retrieve_any(object_id):
    """Return a seeded object, or one localstripe keeps, by id (None if neither has it)."""
    if object_id in state["objects"]:
        return copy.deepcopy(state["objects"][object_id])
    cls = resources.StripeObject._get_class_for_id(object_id)
    try:
        return cls._api_retrieve(object_id)._export() if cls else None
    except UserError:
        return None


def _expand_path(value, parts):
    if isinstance(value, list):  # a list's `data`: expand in each item
        for item in value:
            _expand_path(item, parts)
        return
    if not isinstance(value, dict) or parts[0] not in value:
        raise KeyError(parts[0])
    key, rest = parts[0], parts[1:]
    if isinstance(value[key], str):
        value[key] = _retrieve_any(value[key]) or value[key]
    if rest and value[key] is not None:
        _expand_path(value[key], rest)


def _expanded(obj, paths):
    """Answer a seeded object with `expand[]` ids replaced by their objects, as Stripe
    does (Stripe's objects newer than localstripe's, such as a subscription whose items
    have a price, are seeded). https://docs.stripe.com/expand"""
    obj = copy.deepcopy(obj)
    for path in paths if isinstance(paths, list) else [paths]:
        try:
            _expand_path(obj, str(path).split("."))
        except KeyError:
            return stripe_error(400, f"This property cannot be expanded ({path}).")
    return web.json_response(obj)


async def _update_seeded(obj, request):
    """Merge metadata into a seeded object as Stripe does: "" removes a key."""
    data = await get_post_data(request) or {}
    if set(data) - {"metadata", "expand"}:
        return stripe_error(400, "This fake updates only the metadata of seeded objects.")
    metadata = obj.setdefault("metadata", {})
    for key, value in (data.get("metadata") or {}).items():
        if value == "":
            metadata.pop(key, None)
        else:
            metadata[key] = str(value)
    return web.json_response(obj)


async def seed_objects(request):
    """Store objects (one or a list) that GET /v1/…/<id> will return."""
    data = await request.json()
    for obj in data if isinstance(data, list) else [data]:
        state["objects"][obj["id"]] = obj
    return web.json_response({"stored": len(state["objects"])})


async def list_requests(request):
    path = request.query.get("path")
    method = request.query.get("method")
    found = [
        r
        for r in state["requests"]
        if (not path or r["path"].startswith(path)) and (not method or r["method"] == method)
    ]
    return web.json_response(found)


async def add_fault(request):
    """Fail the next `times` requests matching method + path prefix with a Stripe error;
    with "after", the request is carried out first and only its answer is lost; "skip"
    lets that many matching requests through first; "headers" go on the error answer."""
    data = await request.json()
    state["faults"].append(
        {
            "method": data.get("method", "POST"),
            "path": data["path"],
            "status": int(data.get("status", 500)),
            "type": data.get("type") or "api_error",
            "code": data.get("code"),
            "message": data.get("message") or "Injected failure",
            "times": int(data.get("times", 1)),
            "after": bool(data.get("after", False)),
            "skip": int(data.get("skip", 0)),
            "headers": {str(k): str(v) for k, v in (data.get("headers") or {}).items()},
        }
    )
    return web.json_response({"faults": len(state["faults"])})


async def reset(request):
    resources.store.clear()
    for value in state.values():
        value.clear()
    return web.json_response({"reset": True})


app.middlewares.insert(0, kanri_layer)
app.router.add_post("/_config/kanri/objects", seed_objects)
app.router.add_get("/_config/kanri/requests", list_requests)
app.router.add_post("/_config/kanri/faults", add_fault)
app.router.add_post("/_config/kanri/reset", reset)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 12111
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=lambda *a: print(f"Fake Stripe API on http://127.0.0.1:{port}", flush=True),
    )


if __name__ == "__main__":
    main()
