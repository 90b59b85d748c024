"""The one grammar of references in step fields: `{{trigger.data.object.amount | money}}`.

It lives here, below both apps, because action config fields (integrations) must
recognise a reference and the engine (automations) renders them; integrations never
imports automations. A path is dotted segments of letters, digits, `_` and `-` (Stripe
metadata keys may hold a dash); no segment may start with `_`, so `__class__`,
`__dict__` and private names can never be written, whatever the context holds.

A loop repeats its body for each item of a list, at most `limit` items (default 10,
at most 50); inside it `item` is the current one:

    {{#each trigger.data.object.rows limit=10}}• {{item.id}} {{item.amount | money}}
    {{/each}}

Loops do not nest: a digest is one list, and a bounded message stays bounded.
"""

import re
from dataclasses import dataclass

# Anything between {{ and }} is a reference; its path is checked separately so that a
# malformed one is reported instead of being left in the text.
REFERENCE = re.compile(r"\{\{\s*([^{}|]*?)\s*(?:\|\s*([^{}]*?)\s*)?\}\}")
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
ROOTS = ("trigger", "steps", "run", "workflow")
FILTERS = ("money", "upper", "lower")

# The two block tags: `{{#each PATH limit=N}}` opens a loop and `{{/each}}` closes it.
TAG = re.compile(r"\{\{\s*(?:#each\b(?P<args>[^{}]*)|(?P<end>/each)\s*)\}\}")
LIMIT = re.compile(r"^limit=(\d{1,6})$")
ITEM = "item"  # what the loop's body calls the current item
LOOP_LIMIT = 10
LOOP_MAX = 50


@dataclass(frozen=True)
class Loop:
    """One `{{#each path limit=N}}body{{/each}}` of a text."""

    path: str
    limit: int
    body: str


def split(text):
    """Return (pieces, problem): the text as plain-text strings and Loops in order, and
    (code, params) if its loops break the grammar (then pieces is [])."""
    pieces, position = [], 0
    while True:
        opening = TAG.search(text, position)
        if opening is None:
            pieces.append(text[position:])
            return pieces, None
        if opening.group("end"):
            return [], ("loop_unbalanced", {"text": text[:200]})
        closing = TAG.search(text, opening.end())
        if closing is None:
            return [], ("loop_unbalanced", {"text": text[:200]})
        if not closing.group("end"):
            return [], ("loop_nested", {"text": text[:200]})
        words = opening.group("args").split()
        path = words[0] if words else ""
        limit = LOOP_LIMIT
        for word in words[1:]:
            matched = LIMIT.match(word)
            if matched is None:
                return [], ("loop_syntax", {"text": opening.group(0)})
            limit = int(matched.group(1))
        if not 1 <= limit <= LOOP_MAX:
            return [], ("loop_limit", {"limit": limit, "max": LOOP_MAX})
        pieces.append(text[position : opening.start()])
        pieces.append(Loop(path, limit, text[opening.end() : closing.start()]))
        position = closing.end()


def parse(text):
    """Return the (path, filter or None) pairs referenced in `text`, loop bodies included
    (loop tags are not references)."""
    if not isinstance(text, str):
        return []
    return [
        (m.group(1), m.group(2) or None)
        for m in REFERENCE.finditer(text)
        if not TAG.fullmatch(m.group(0))
    ]


def is_reference(value):
    """Return whether `value` is exactly one reference (it then keeps the value's type)."""
    return isinstance(value, str) and REFERENCE.fullmatch(value.strip()) is not None


def path_problem(path, roots=ROOTS):
    """Return (code, params) for a path that breaks the grammar, or None if it is well formed.

    Inside a loop's body `roots` also holds ITEM."""
    parts = path.split(".") if path else [""]
    if parts[0] not in roots:
        return "reference_root", {"path": path, "roots": ", ".join(roots)}
    for part in parts:
        if part.startswith("_"):
            return "reference_private", {"path": path, "segment": part}
        if not SEGMENT.match(part):
            return "reference_syntax", {"path": path}
    return None
