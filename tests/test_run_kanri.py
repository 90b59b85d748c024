"""`manage.py run_kanri` (what `make run` starts): a task cluster that dies is restarted
while the web server keeps serving, the restarts are bounded, Ctrl-C stops everything,
the Slack stand-in is started in development, and each log line is printed once."""

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from integrations.management.commands import run_kanri
from tests.conftest import BASE_DIR, free_port, wait_until
from tests.conftest import test_database_url as database_url

pytestmark = pytest.mark.cluster


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def status_of(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


class KanriRun:
    """A `run_kanri` process on the test database, and what it printed."""

    def __init__(self, tmp_path, port=None, **env):
        self.port = port or free_port()
        self.slack_port = free_port()
        self.log_path = tmp_path / "run_kanri.log"
        self.env = {
            **os.environ,
            "ENV_FILE": "",
            "DEBUG": "on",
            "SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": database_url(),
            "REDIS_URL": "",
            "STRIPE_API_HOST": "",
            "SLACK_API_URL": f"http://127.0.0.1:{self.slack_port}/api/",
            "SLACK_BOT_TOKEN": "",
            "QUEUE_NAME": f"run-kanri-{self.port}",
            "QUEUE_WORKERS": "1",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_kanri", f"127.0.0.1:{self.port}", "--no-setup"],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def output(self):
        return self.log_path.read_text()

    def pids(self, name):
        """Return the pids run_kanri says it started `name` with, in order."""
        return [int(pid) for pid in re.findall(rf"Started {name} \(pid (\d+)\)", self.output())]

    def serving(self):
        if self.process.poll() is not None:
            raise AssertionError(f"run_kanri exited:\n{self.output()}")
        try:
            return status_of(self.url + "/admin/login/") == 200
        except OSError:
            return False

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # as Ctrl-C in the terminal
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def kanri(transactional_db, tmp_path):
    run = KanriRun(tmp_path)
    wait_until(run.serving, timeout=60, message="run_kanri's web server")
    wait_until(lambda: run.pids("task cluster"), message="the task cluster")
    yield run
    run.stop()
    print(run.output())


def test_a_killed_task_cluster_is_restarted_while_the_web_server_keeps_serving(kanri):
    [first] = kanri.pids("task cluster")

    os.kill(first, signal.SIGKILL)

    wait_until(
        lambda: (
            "Task cluster stopped (killed by SIGKILL); restarting it in 1 s (the web "
            "server keeps serving)." in kanri.output()
        ),
        message="the restart line",
    )
    assert status_of(kanri.url + "/admin/login/") == 200
    [_, second] = wait_until(
        lambda: len(kanri.pids("task cluster")) == 2 and kanri.pids("task cluster")
    )
    assert second != first
    wait_until(lambda: not group_alive(first), message="the dead cluster's workers to go")
    assert alive(second)
    assert kanri.process.poll() is None
    assert status_of(kanri.url + "/admin/login/") == 200
    [web] = kanri.pids("web server")
    assert alive(web)


def test_ctrl_c_stops_every_process_it_started(kanri):
    started = [
        pid for name in ("task cluster", "web server", "Slack stand-in") for pid in kanri.pids(name)
    ]
    assert len(started) == 3

    kanri.process.send_signal(signal.SIGINT)

    assert kanri.process.wait(timeout=30) == 0
    assert "Stopped." in kanri.output()
    wait_until(lambda: not any(alive(pid) or group_alive(pid) for pid in started))


def test_the_slack_stand_in_answers_where_slack_api_url_points(kanri):
    request = urllib.request.Request(
        f"http://127.0.0.1:{kanri.slack_port}/api/auth.test",
        data=b"",
        headers={"Authorization": "Bearer " + run_kanri.STAND_IN_SLACK_TOKEN},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.read().startswith(b'{"ok": true')
    assert "Slack messages: http://127.0.0.1:" in kanri.output()


def test_each_log_line_is_printed_once(kanri):
    assert status_of(kanri.url + "/no-such-page-h5/") == 404

    wait_until(lambda: '"GET /no-such-page-h5/ HTTP/1.1" 404' in kanri.output())
    output = kanri.output()
    assert output.count("Not Found: /no-such-page-h5/") == 1
    assert output.count('"GET /no-such-page-h5/ HTTP/1.1" 404') == 1


def test_a_traceback_is_logged_once(tmp_path):
    script = (
        "import django, logging; django.setup()\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n"
        "    logging.getLogger('django.request').exception('boom-once')\n"
        "logging.getLogger('django-q').warning('queue-once')\n"
        "logging.getLogger('integrations.stripe_webhooks').warning('kanri-once')\n"
    )
    env = {**os.environ, "ENV_FILE": "", "DEBUG": "on", "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    for text in (
        "ERROR django.request boom-once\nTraceback (most recent call last):",
        'File "<string>", line 3, in <module>',
        "ZeroDivisionError: division by zero",
        "WARNING django-q queue-once",
        "WARNING integrations.stripe_webhooks kanri-once",
    ):
        assert done.stderr.count(text) == 1, (text, done.stderr)


# ---------------------------------------------------------------- without processes


class Dead:
    """A finished process in a session of its own, as run_kanri starts them."""

    def __init__(self):
        self.process = subprocess.Popen(["true"], start_new_session=True)
        self.process.wait()


def test_restarts_back_off_and_stop_after_five_in_a_minute(capsys):
    command = run_kanri.Command()
    child = run_kanri.Child("task cluster", [], restart=True)
    child.process = Dead().process

    answers = [command.schedule_restart(child, 1, now=100.0 + i) for i in range(6)]

    assert answers == [True, True, True, True, True, False]
    lines = capsys.readouterr().err.splitlines()
    assert [re.search(r"in (\d+) s ", line).group(1) for line in lines[:5]] == [
        "1",
        "2",
        "4",
        "8",
        "16",
    ]
    assert lines[5] == (
        "Task cluster stopped (exit status 1), 6 times in 60 s: a restart will not help; "
        "stopping everything."
    )


def test_restarts_older_than_a_minute_no_longer_count(capsys):
    command = run_kanri.Command()
    child = run_kanri.Child("task cluster", [], restart=True)
    child.process = Dead().process
    for i in range(5):
        command.schedule_restart(child, 1, now=100.0 + i)

    # The first restart has left the window; the four others are still in it.
    assert command.schedule_restart(child, 1, now=160.5)
    assert child.restart_at == 160.5 + 16


@pytest.mark.parametrize(
    ("debug", "url", "expected"),
    [
        (True, "http://127.0.0.1:{port}/api/", "port"),
        (True, "http://localhost:{port}/api/", "port"),
        (False, "http://127.0.0.1:{port}/api/", None),
        (True, "https://slack.com/api/", None),
        (True, "", None),
    ],
)
def test_a_stand_in_is_started_only_for_a_free_loopback_port_in_development(
    settings, debug, url, expected
):
    settings.DEBUG = debug
    port = free_port()

    found = run_kanri.local_port(url.format(port=port))

    assert found == (port if expected else None)


def test_no_stand_in_is_started_where_something_already_answers(settings):
    settings.DEBUG = True
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run_kanri.local_port(f"http://127.0.0.1:{port}/api/") is None
