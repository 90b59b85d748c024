#!/usr/bin/env python
"""Fail if any Kanri string lacks its Japanese translation.

Runs Django's makemessages for Japanese on a temporary copy of the project (so the check
never rewrites the working tree), then reads each Kanri catalog it produced:
automations/locale/ja (automations and the project templates; LOCALE_PATHS) and
integrations/locale/ja. Any message that is untranslated or fuzzy fails the check, with
its file and msgid; so does a compiled .mo in the repository that is not its .po compiled.

    .venv/bin/python .ci/messages_check.py           # the check (CI)
    .venv/bin/python .ci/messages_check.py --write   # update the .po files in place
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ["automations", "integrations", "templates", "config", "manage.py"]
CATALOGS = [
    "automations/locale/ja/LC_MESSAGES/django.po",
    "integrations/locale/ja/LC_MESSAGES/django.po",
]
LANGUAGES = ["ja"]
# Only Kanri's own code and templates: never the virtualenv, the tests or build output.
IGNORED = [
    ".venv",
    "venv",
    "tests",
    "benchmarks",
    "var",
    "*.egg-info",
    "node_modules",
    "__pycache__",
]


def makemessages(root):
    """Run makemessages for every language in `root` (a project tree) and return its output."""
    env = {**os.environ, "ENV_FILE": "", "DEBUG": "on", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("DATABASE_URL", None)  # makemessages needs no database; a DSN would be parsed only
    command = [sys.executable, "manage.py", "makemessages", "--add-location", "file"]
    for language in LANGUAGES:
        command += ["-l", language]
    for pattern in IGNORED:
        command += ["--ignore", pattern]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"makemessages failed:\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def entries(po_text):
    """Yield (msgid, msgstrs, flags) of each entry of a .po file, the header left out."""
    entry = {"flags": set(), "msgid": None, "msgstr": []}
    field = None

    def done(entry):
        if entry["msgid"]:  # the header has an empty msgid
            return entry["msgid"], entry["msgstr"], entry["flags"]
        return None

    for line in [*po_text.splitlines(), ""]:
        line = line.strip()
        if not line:
            found = done(entry)
            if found:
                yield found
            entry, field = {"flags": set(), "msgid": None, "msgstr": []}, None
            continue
        if line.startswith("#~"):  # obsolete
            continue
        if line.startswith("#,"):
            entry["flags"].update(f.strip() for f in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        if line.startswith("msgctxt "):
            field = "msgctxt"
            continue
        if line.startswith("msgid_plural "):
            field = "msgid_plural"
            continue
        if line.startswith("msgid "):
            field = "msgid"
            entry["msgid"] = _unquote(line[6:])
            continue
        if line.startswith("msgstr"):
            field = "msgstr"
            entry["msgstr"].append(_unquote(line.split(" ", 1)[1]))
            continue
        if line.startswith('"'):
            if field == "msgid":
                entry["msgid"] += _unquote(line)
            elif field == "msgstr":
                entry["msgstr"][-1] += _unquote(line)


def _unquote(text):
    return text.strip()[1:-1]


def problems(root):
    """Return one line per untranslated or fuzzy message in the catalogs under `root`."""
    found = []
    for catalog in CATALOGS:
        path = Path(root) / catalog
        if not path.exists():
            found.append(f"{catalog}: missing (makemessages wrote no catalog here)")
            continue
        for msgid, msgstrs, flags in entries(path.read_text(encoding="utf-8")):
            if "fuzzy" in flags:
                found.append(f"{catalog}: fuzzy: {msgid!r}")
            elif not msgstrs or not all(msgstrs):
                found.append(f"{catalog}: untranslated: {msgid!r}")
    return found


def stale_compiled(root):
    """Return the catalogs whose committed .mo is not what their .po compiles to.

    Compared by content, not by time: a checkout gives both files the same mtime.
    """
    stale = []
    for catalog in CATALOGS:
        po = Path(root) / catalog
        mo = po.with_suffix(".mo")
        if not po.exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "django.mo"
            # What Django's compilemessages runs.
            subprocess.run(["msgfmt", "--check-format", "-o", fresh, po], check=True)
            if not mo.exists() or mo.read_bytes() != fresh.read_bytes():
                stale.append(f"{catalog}: {mo.name} is out of date; run compilemessages")
    return stale


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="Update the .po files in place.")
    args = parser.parse_args()
    if args.write:
        makemessages(ROOT)
        found = problems(ROOT)
    else:
        with tempfile.TemporaryDirectory(prefix="kanri-messages-") as tmp:
            for name in COPIED:
                source = ROOT / name
                if source.is_dir():
                    shutil.copytree(
                        source, Path(tmp) / name, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy2(source, Path(tmp) / name)
            makemessages(tmp)
            found = problems(tmp)
        found += stale_compiled(ROOT)
    for line in found:
        print(line)
    if found:
        sys.exit(f"messages-check: {len(found)} problem(s) in the Japanese catalogs.")
    print("messages-check: every Kanri message has its Japanese translation.")


if __name__ == "__main__":
    main()
