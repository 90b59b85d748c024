"""The CI check of the Japanese catalogs: what it counts as untranslated or fuzzy."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("messages_check", ROOT / ".ci" / "messages_check.py")
messages_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(messages_check)

CATALOG = """msgid ""
msgstr ""
"Language: ja\\n"
"Content-Type: text/plain; charset=UTF-8\\n"

#: automations/models/runs.py
msgid "Succeeded"
msgstr "成功"

#: automations/admin/runs.py
#, fuzzy, python-format
msgid "Retried %(count)d run(s)."
msgstr "%(count)d 件の実行をキャンセルしました。"

#: automations/dashboard.py
msgid ""
"Runs per day "
"by status"
msgstr ""

#: templates/admin/index.html
#, python-format
msgid "%(workers)s worker"
msgid_plural "%(workers)s workers"
msgstr[0] "ワーカー %(workers)s 個"

#~ msgid "Gone"
#~ msgstr ""
"""


def test_it_names_untranslated_and_fuzzy_messages_and_nothing_else(tmp_path):
    for catalog in messages_check.CATALOGS:
        path = tmp_path / catalog
        path.parent.mkdir(parents=True)
        path.write_text(CATALOG if "automations" in catalog else 'msgid ""\nmsgstr ""\n')

    assert messages_check.problems(tmp_path) == [
        "automations/locale/ja/LC_MESSAGES/django.po: fuzzy: 'Retried %(count)d run(s).'",
        "automations/locale/ja/LC_MESSAGES/django.po: untranslated: 'Runs per day by status'",
    ]


def test_a_missing_catalog_is_a_problem(tmp_path):
    assert messages_check.problems(tmp_path) == [
        f"{catalog}: missing (makemessages wrote no catalog here)"
        for catalog in messages_check.CATALOGS
    ]


def test_the_committed_catalogs_are_compiled():
    assert messages_check.stale_compiled(ROOT) == []
