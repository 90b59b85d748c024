"""Workflows as YAML files: the one home of the file format (`export_workflows`,
`import_workflows`).

A file holds one workflow, in a fixed, human key order so that diffs review well:

    # Kanri workflow. …
    format: 1
    name: Tag VIP customers
    description: …
    owner: alice              # a username, or null
    status: active            # informational: import never activates
    trigger:
      kind: stripe_event
      event_type: payment_intent.succeeded
    conditions: [...]         # groups of conditions, as in the definition
    limits: {}                # money caps: per_run / per_day, currency -> minor units
    steps:
      - name: notify_team
        kind: email.send
        config: {...}         # keys in the action's form order

Writing turns a definition dict (automations/definition.py) into that text; reading turns
text back into a definition dict plus the owner's username, and refuses what is not plain
data: YAML aliases (they can multiply a small file into gigabytes), anchors' merge keys,
duplicate keys, nesting deeper than MAX_NESTING, files over MAX_BYTES. Scalars follow
YAML 1.2's plain reading where YAML 1.1 surprises people: `no`, `on` and `NO` (Norway) stay
text, `9:30` and `2026-01-31` stay text, `0123` stays text. Validation of the definition is
not here: it is the one validator's, through the service.
"""

import json
import math
from dataclasses import dataclass, field

import yaml
from django.utils.text import slugify
from django.utils.translation import gettext as _

from automations import triggers
from integrations.registry import ACTIONS, get_action

FORMAT = 1
MAX_BYTES = 1_000_000
# A definition nests about two levels per branch (MAX_DEPTH 20), plus config and values;
# this leaves room for those and stops a hostile file long before the parser's recursion.
MAX_NESTING = 100
SUFFIXES = (".yaml", ".yml")
HEADER = (
    "# Kanri workflow. `manage.py import_workflows` creates or updates its draft;\n"
    "# it never activates it: activation is a person's decision, in the admin.\n"
)
TOP = ("format", "name", "description", "owner", "status", "trigger", "conditions")
TOP += ("limits", "steps")
CONDITION = ("field", "op", "value", "currency")
CAPS = ("per_run", "per_day")


@dataclass
class FileError:
    """A problem with a file as a file (not with its definition): where and the words."""

    where: str
    message: str

    def __str__(self):
        return f"{self.where}: {self.message}" if self.where else self.message


@dataclass
class Document:
    definition: dict | None = None
    owner: str | None = None  # the username the file names, if any
    errors: list = field(default_factory=list)  # [FileError]


# ------------------------------------------------------------------ writing


def filename(name, pk, taken=()):
    """Return the file name for a workflow: a slug of its name ("tag-vip-customers.yaml"),
    made unique with its id when another file in `taken` has it."""
    slug = slugify(name)[:80].strip("-") or f"workflow-{pk}"
    if f"{slug}.yaml" in taken:
        slug = f"{slug}-{pk}"
    while f"{slug}.yaml" in taken:
        slug += f"-{pk}"
    return f"{slug}.yaml"


def dumps(definition, owner=None, status=None):
    """Return the YAML text of a definition (and its owner's username, its status)."""
    plain = json.loads(json.dumps(definition))  # str enums and tuples become plain values
    document = {
        "format": FORMAT,
        "name": plain.get("name") or "",
        "description": plain.get("description") or "",
        "owner": owner,
        "status": status,
        "trigger": _trigger(plain.get("trigger") or {}),
        "conditions": _groups(plain.get("conditions") or []),
        "limits": _limits(plain.get("limits") or {}),
        "steps": [_step(step) for step in plain.get("steps") or []],
    }
    if status is None:
        del document["status"]
    return HEADER + yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=4096,
        indent=2,
    )


def _sorted(value):
    """Dicts inside values (metadata, lists of rows) in alphabetical key order."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _ordered(data, first):
    """Return data with the keys in `first` in that order, then the others sorted."""
    keys = [k for k in first if k in data] + sorted(k for k in data if k not in first)
    return {k: _sorted(data[k]) for k in keys}


def _trigger(trigger):
    kind = triggers.kind(trigger.get("kind"))
    first = ["kind"]
    if kind is not None:
        first += [*kind.COLUMNS, *getattr(kind, "OPTIONS", ())]
    return _ordered(trigger, first)


def _groups(groups):
    if not isinstance(groups, list):
        return groups
    return [
        [_ordered(c, CONDITION) if isinstance(c, dict) else c for c in group]
        if isinstance(group, list)
        else group
        for group in groups
    ]


def _limits(limits):
    return _ordered(limits, CAPS) if isinstance(limits, dict) else limits


def _step(step):
    if not isinstance(step, dict):
        return step
    if step.get("kind") == "branch":
        out = _ordered(
            {k: v for k, v in step.items() if k not in ("conditions", "then", "else")},
            ("name", "kind"),
        )
        out["conditions"] = _groups(step.get("conditions") or [])
        out["then"] = [_step(s) for s in step.get("then") or []]
        out["else"] = [_step(s) for s in step.get("else") or []]
        return out
    out = _ordered({k: v for k, v in step.items() if k != "config"}, ("name", "kind"))
    config = step.get("config") or {}
    # The action's form order is the order the editor shows the fields in.
    fields = (
        list(get_action(step["kind"]).form_class.base_fields) if step.get("kind") in ACTIONS else []
    )
    first = [k for name in fields for k in (name, f"{name}_currency")]
    out["config"] = _ordered(config, first) if isinstance(config, dict) else config
    return out


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, and never an alias (the reader
    refuses them)."""

    def ignore_aliases(self, data):
        return True

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _represent_str(dumper, value):
    # Multi-line text (an email body) as a literal block, the way a person writes it;
    # PyYAML falls back to a quoted string when a block could not say it exactly.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


# ------------------------------------------------------------------ reading


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that a workflow file may not use."""


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader (no Python objects) that refuses aliases and deep nesting, and
    reads ambiguous YAML 1.1 scalars as text."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                None,
                None,
                _("aliases (*%(name)s) are not allowed") % {"name": event.anchor},
                event.start_mark,
            )
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise _Refused(
                None,
                None,
                _("nested more than %(max)d levels deep") % {"max": MAX_NESTING},
                event.start_mark,
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _value in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise _Refused(
                        None,
                        None,
                        _("the key %(key)r appears twice") % {"key": key_node.value},
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)

    def flatten_mapping(self, node):
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Refused(
                    None, None, _("merge keys (<<) are not allowed"), key_node.start_mark
                )
        return super().flatten_mapping(node)


def _text(loader, node):
    return loader.construct_scalar(node)


def _bool(loader, node):
    value = loader.construct_scalar(node)
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value  # yes / no / on / off / NO: text, as YAML 1.2 reads them


def _int(loader, node):
    value = loader.construct_scalar(node)
    digits = value.lstrip("+-")
    if ":" in value or (len(digits) > 1 and digits[0] == "0" and digits[1].isdigit()):
        return value  # 9:30 and 0123 are a time and a code, not 570 and 83
    return loader.construct_yaml_int(node)


def _float(loader, node):
    value = loader.construct_scalar(node)
    if ":" in value:
        return value
    return loader.construct_yaml_float(node)


_Loader.add_constructor("tag:yaml.org,2002:bool", _bool)
_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_Loader.add_constructor("tag:yaml.org,2002:float", _float)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _text)


def load(data):
    """Return (parsed YAML value, [FileError]) for a file's bytes or text."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            return None, [
                FileError("", _("The file is larger than %(max)d bytes.") % {"max": MAX_BYTES})
            ]
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return None, [FileError("", _("The file is not UTF-8 text."))]
    if len(data) > MAX_BYTES:
        return None, [
            FileError("", _("The file is larger than %(max)d bytes.") % {"max": MAX_BYTES})
        ]
    try:
        return yaml.load(data, Loader=_Loader), []  # a SafeLoader subclass
    except yaml.YAMLError as e:
        return None, [FileError("", _yaml_error(e))]
    except RecursionError:
        return None, [FileError("", _("The file is nested too deeply."))]


def _yaml_error(error):
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return _("Not valid YAML: %(problem)s") % {"problem": problem}
    return _("Not valid YAML at line %(line)d, column %(column)d: %(problem)s") % {
        "line": mark.line + 1,
        "column": mark.column + 1,
        "problem": problem,
    }


def read(data):
    """Return a Document for a file's bytes or text: its definition and owner, or errors."""
    value, errors = load(data)
    if errors:
        return Document(errors=errors)
    if not isinstance(value, dict):
        return Document(
            errors=[
                FileError(
                    "",
                    _(
                        "A workflow file is one mapping (format: 1, name: …, trigger: …, "
                        "steps: …), not %(type)s."
                    )
                    % {"type": _type_name(value)},
                )
            ]
        )
    version = value.get("format")
    if "format" not in value:
        return Document(
            errors=[
                FileError(
                    "format",
                    _("No format version: the file must say “format: %(format)d”.")
                    % {"format": FORMAT},
                )
            ]
        )
    if version != FORMAT or isinstance(version, bool):
        return Document(
            errors=[
                FileError(
                    "format",
                    _("Unknown format version %(version)r: this Kanri reads version %(format)d.")
                    % {"version": version, "format": FORMAT},
                )
            ]
        )
    errors = [FileError(str(key), _("Unknown key.")) for key in value if key not in TOP]
    unstorable = _not_plain(value)
    if unstorable:
        # A definition is stored as JSON: what JSON cannot hold cannot be validated either.
        return Document(errors=errors + unstorable)
    for key in ("name", "description"):
        if value.get(key) is not None and not isinstance(value[key], str):
            # Import matches workflows by name: 2024 and "2024" must not be two workflows.
            errors.append(FileError(key, _("This is text: quote it.")))
    owner = value.get("owner")
    if owner is not None and not isinstance(owner, str):
        errors.append(FileError("owner", _("The owner is a username, or null.")))
        owner = None
    definition = {
        "name": value.get("name"),
        "description": value.get("description") or "",
        "trigger": value.get("trigger"),
        "conditions": value.get("conditions") or [],
        "steps": value.get("steps") or [],
    }
    if value.get("limits"):
        definition["limits"] = value["limits"]
    return Document(definition=definition, owner=owner or None, errors=errors)


def _type_name(value):
    if value is None:
        return _("an empty document")
    if isinstance(value, list):
        return _("a list")
    return _("a single value")


def _not_plain(value):
    """Return FileErrors for what JSON (the definition's storage) cannot hold."""
    errors, pending = [], [("", value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    errors.append(
                        FileError(where, _("Keys must be text: quote %(key)r.") % {"key": key})
                    )
                    continue
                pending.append((f"{where}.{key}" if where else key, child))
        elif isinstance(item, list):
            pending += [(f"{where}.{i}", child) for i, child in enumerate(item)]
        elif isinstance(item, float) and not math.isfinite(item):
            errors.append(FileError(where, _("Numbers must be finite.")))
        elif not (item is None or isinstance(item, str | int | float | bool)):
            errors.append(
                FileError(
                    where,
                    _(
                        "A %(type)s is not allowed here: use text, numbers, true/false, "
                        "lists and mappings."
                    )
                    % {"type": type(item).__name__},
                )
            )
    return sorted(errors, key=lambda e: e.where)
