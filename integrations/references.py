"""The one grammar of references in step fields: `{{trigger.data.object.amount | money}}`.

It lives here, below both apps, because action config fields (integrations) must
recognise a reference and the engine (automations) renders them; integrations never
imports automations. A path is dotted segments of letters, digits, `_` and `-` (Stripe
metadata keys may hold a dash); no segment may start with `_`, so `__class__`,
`__dict__` and private names can never be written, whatever the context holds.
"""

import re

# Anything between {{ and }} is a reference; its path is checked separately so that a
# malformed one is reported instead of being left in the text.
REFERENCE = re.compile(r"\{\{\s*([^{}|]*?)\s*(?:\|\s*([^{}]*?)\s*)?\}\}")
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
ROOTS = ("trigger", "steps", "run", "workflow")
FILTERS = ("money", "upper", "lower")


def parse(text):
    """Return the (path, filter or None) pairs referenced in `text`."""
    if not isinstance(text, str):
        return []
    return [(m.group(1), m.group(2) or None) for m in REFERENCE.finditer(text)]


def is_reference(value):
    """Return whether `value` is exactly one reference (it then keeps the value's type)."""
    return isinstance(value, str) and REFERENCE.fullmatch(value.strip()) is not None


def path_problem(path):
    """Return (code, params) for a path that breaks the grammar, or None if it is well formed."""
    parts = path.split(".") if path else [""]
    if parts[0] not in ROOTS:
        return "reference_root", {"path": path, "roots": ", ".join(ROOTS)}
    for part in parts:
        if part.startswith("_"):
            return "reference_private", {"path": path, "segment": part}
        if not SEGMENT.match(part):
            return "reference_syntax", {"path": path}
    return None
