"""Fake Stripe API: localstripe on 127.0.0.1, with a thin layer in front.

Run: python -m tests.fakes.stripe_api PORT

localstripe serves customers, payment intents, charges, refunds, subscriptions and
invoices. The layer in front adds what Kanri needs and localstripe lacks:
- GET /v1/account, and any object seeded through POST /_config/kanri/objects (Radar early
  fraud warnings, disputes, checkout sessions, prices…) at GET /v1/…/<id>;
- Stripe-shaped 404s (code resource_missing), which dj-stripe relies on;
- Idempotency-Key replay, as Stripe does for 24 hours;
- a log of every /v1 request (GET /_config/kanri/requests), so tests assert what was sent;
- injected failures (POST /_config/kanri/faults), to test retries and error classification;
- POST /_config/kanri/reset empties all of it.
Development and tests only: nothing here talks to the network beyond loopback.
"""

import json
import sys
import time
from urllib.parse import parse_qsl

from aiohttp import web
from localstripe import resources

# localstripe pickles its store to one fixed /tmp file on every write: parallel runs
# would share it. Keep the store in memory only.
resources.Store.dump_to_disk = lambda self: None

from localstripe.server import app  # noqa: E402  (importing builds its routes)

_refund_init = resources.Refund.__init__


def _refund_with_reason(self, reason=None, **kwargs):
    # localstripe refuses Stripe's `reason` parameter; real Stripe accepts and returns it.
    _refund_init(self, **kwargs)
    self.reason = reason


resources.Refund.__init__ = _refund_with_reason

ACCOUNT_ID = "acct_kanri_local"

state = {"objects": {}, "requests": [], "idempotent": {}, "faults": []}


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
        return stripe_error(fault["status"], fault["message"], fault["type"], fault.get("code"))

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

    if request.method == "GET" and request.path == "/v1/account":
        response = web.json_response(_account())
    elif request.method == "GET" and request.path.rsplit("/", 1)[-1] in state["objects"]:
        response = web.json_response(state["objects"][request.path.rsplit("/", 1)[-1]])
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
        return stripe_error(fault["status"], fault["message"], fault["type"], fault.get("code"))
    return response


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
    with "after", the request is carried out first and only its answer is lost."""
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
