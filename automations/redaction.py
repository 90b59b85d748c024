"""Stripe secrets never leave Kanri: one place that recognises and removes them from what any
screen shows (admin pages, API answers, command reports)."""

import re

# Stripe secrets by their documented prefixes (https://docs.stripe.com/keys), and the
# client secrets of intents (they let anyone confirm the payment). No page shows one,
# whatever field it hides in: Stripe lists, run snapshots, step requests and answers.
SECRET = re.compile(
    r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9_]+"
    r"|\b(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"
)


def redact(text):
    """Return text with anything shaped like a Stripe secret replaced."""
    return SECRET.sub("[redacted]", str(text))


def redact_data(value):
    """Return plain data (dicts, lists, strings) with every secret-shaped string redacted."""
    if isinstance(value, dict):
        return {redact(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
