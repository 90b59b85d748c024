"""The fake Stripe API lives in integrations/devstack/stripe_api.py, with the other local
stand-ins (application code never imports tests/); this name keeps old imports and
`python -m tests.fakes.stripe_api PORT` working."""

import sys

from integrations.devstack import stripe_api

if __name__ == "__main__":
    stripe_api.main()
else:
    sys.modules[__name__] = stripe_api
