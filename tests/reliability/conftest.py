"""The reliability layer: real PostgreSQL, Redis and `qcluster` processes, faults injected.

Each test adds what it sent, injected and observed to `tally`; the summary at the end
prints the counts, and a mismatch (a lost or doubled run or side effect, a 5xx) fails
the session even if every test passed.
"""

import pytest

from tests.reliability.stack import *  # noqa: F403
from tests.reliability.tally import tally
from tests.reliability.web import *  # noqa: F403


@pytest.fixture
def counts():
    return tally


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not any(c for c in (tally.counts, tally.faults)):
        return
    terminalreporter.section("Kanri reliability")
    for line in tally.lines():
        terminalreporter.write_line(line)
    problems = tally.problems()
    if problems:
        terminalreporter.write_line("MISMATCH: " + "; ".join(problems), red=True)
    else:
        terminalreporter.write_line("0 lost, 0 duplicated, 0 5xx", green=True)


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == 0 and tally.problems():
        session.exitstatus = 1
