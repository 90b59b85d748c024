"""The development fake of the Stripe API, with a delay per /v1 call settable at run time.

    python -m kanri_bench.fake_stripe PORT      (PYTHONPATH: the checkout and benchmarks/)

POST /_config/bench/latency {"ms": N} models Stripe's real round trip: the fake answers in
~1 ms, api.stripe.com in ~100-300 ms, and that time holds a queue worker.

The fake itself is development code, `integrations/devstack/stripe_api.py`; until that
move lands it is still `tests/fakes/stripe_api.py`, used as a fallback with a note.
"""

import asyncio
import sys
import time

from kanri_bench.procs import http_json


def fake_module():
    try:
        from integrations.devstack import stripe_api
    except ImportError:
        print(
            "note: integrations.devstack.stripe_api is not there yet;"
            " serving tests.fakes.stripe_api instead",
            flush=True,
        )
        from tests.fakes import stripe_api
    return stripe_api


def serve(port):
    from aiohttp import web

    stripe_api = fake_module()
    latency = {"ms": 0.0}

    @web.middleware
    async def delay(request, handler):
        if latency["ms"] and request.path.startswith("/v1/"):
            await asyncio.sleep(latency["ms"] / 1000)
        return await handler(request)

    async def set_latency(request):
        latency["ms"] = float((await request.json())["ms"])
        return web.json_response(latency)

    stripe_api.app.middlewares.insert(0, delay)
    stripe_api.app.router.add_post("/_config/bench/latency", set_latency)
    sys.argv = ["stripe_api", str(port)]
    stripe_api.main()


# What the fake serves for each event: a customer, and a succeeded payment intent with no
# payment method or charge, so a sync that fetches finds what a minimal real
# payment_intent.succeeded refers to and no more.
# fmt: off
CUSTOMER = {
    "object": "customer", "livemode": False, "metadata": {}, "balance": 0, "currency": "usd",
    "default_source": None, "delinquent": False, "description": None, "discount": None,
    "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None},
    "preferred_locales": [], "tax_exempt": "none", "address": None, "phone": None,
    "shipping": None,
}
PAYMENT_INTENT = {
    "object": "payment_intent", "amount": 5000, "amount_capturable": 0,
    "amount_received": 5000, "currency": "usd", "status": "succeeded", "livemode": False,
    "metadata": {}, "payment_method": None, "latest_charge": None,
    "capture_method": "automatic", "confirmation_method": "automatic",
    "payment_method_types": ["card"], "description": None, "receipt_email": None,
    "canceled_at": None, "cancellation_reason": None, "last_payment_error": None,
    "next_action": None, "on_behalf_of": None, "setup_future_usage": None, "shipping": None,
    "statement_descriptor": None, "transfer_data": None, "transfer_group": None,
    "invoice": None, "review": None, "application": None,
}
# fmt: on


def seed_objects(stripe_url, tag, n, customers=None):
    """Give every event its own payment intent and customer in the fake, as real traffic
    has, so that any fetch the sync makes succeeds; return loadgen --objects lines.

    With `customers`, the events share that many customers (event i pays as customer
    i % customers): a shop's returning buyers, whom the mirror fetches once, then knows."""
    http_json(stripe_url + "/_config/kanri/reset", {})  # also empties its request log
    objects, lines = [], []
    created = int(time.time()) - 60
    for i in range(n):
        pi, cus = f"pi_bench{tag}x{i:06d}", f"cus_bench{tag}x{i % (customers or n):06d}"
        # `sources` as Stripe answers it when expanded (dj-stripe asks for it), empty.
        sources = {"object": "list", "data": [], "has_more": False, "total_count": 0}
        if i < (customers or n):
            objects.append(
                CUSTOMER
                | {"id": cus, "created": created, "email": f"buyer{i}@example.test"}
                | {"name": f"Buyer {i}", "invoice_prefix": f"B{i:06d}"}
                | {"sources": sources | {"url": f"/v1/customers/{cus}/sources"}}
            )
        objects.append(
            PAYMENT_INTENT
            | {"id": pi, "created": created, "customer": cus, "client_secret": pi + "_secret_x"}
        )
        lines.append(f"{pi} {cus}")
    for k in range(0, len(objects), 500):  # aiohttp refuses bodies over 1 MB
        http_json(stripe_url + "/_config/kanri/objects", objects[k : k + 500])
    return lines


def calls(stripe_url):
    """The fake's /v1 request log since the last seeding reset it, counted per endpoint."""
    counts = {}
    for r in http_json(stripe_url + "/_config/kanri/requests"):
        key = f"{r['method']} {'/'.join(r['path'].split('/')[:3])}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def set_latency(stripe_url, ms):
    http_json(stripe_url + "/_config/bench/latency", {"ms": ms})


if __name__ == "__main__":
    serve(int(sys.argv[1]))
