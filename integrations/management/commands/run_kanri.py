"""`make run`: the web server, a django-q2 cluster and the local stand-ins, supervised.

The task cluster is restarted when it dies (with a growing pause, and at most
MAX_RESTARTS times a minute), while the web server keeps serving; any other process that
exits stops them all. Each child runs in its own session, so the terminal's Ctrl-C
reaches this command only and each child's main process alone is signalled: django-q2
hangs when every process of its group gets SIGTERM at once (django-q2 issue 346).
"""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.urls import reverse
from django.utils.text import capfirst
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

LOOPBACK = ("127.0.0.1", "localhost")
# A restarted cluster waits 1, 2, 4, … s first, never more than BACKOFF_CAP; past
# MAX_RESTARTS in RESTART_WINDOW seconds something is wrong that a restart will not fix.
BACKOFF_CAP = 30
MAX_RESTARTS = 5
RESTART_WINDOW = 60
# The token the children use for the local Slack stand-in when none is configured; the
# stand-in accepts any token, and this one is no secret.
STAND_IN_SLACK_TOKEN = "xoxb-kanri-local-stand-in"
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """Have Linux send SIGTERM to the child if run_kanri itself is killed, so no orphan
    keeps the ports or the queue."""
    # Not Linux: Ctrl-C still stops everything through run_kanri.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """One supervised process: its command line, whether it is restarted, its history."""

    def __init__(self, name, argv, *, restart=False):
        self.name, self.argv, self.restart = name, argv, restart
        self.process = None
        self.restarts = []  # monotonic times of recent restarts
        self.restart_at = None  # when a dead child is due to start again

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None


class Command(BaseCommand):
    help = _(
        "Run Kanri locally: the web server and a django-q2 cluster together, plus the fake "
        "Stripe API and the Slack stand-in when STRIPE_API_HOST and SLACK_API_URL point at "
        "this machine. A task cluster that dies is restarted. Ctrl-C stops them all."
    )

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument(
            "--no-setup", action="store_true", help=_("Skip `setup_local` (demo admin, endpoint).")
        )

    def handle(self, *args, addrport, no_setup, **options):
        self.children = []
        self.env = dict(os.environ)
        self.stopping = False
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        try:
            stripe_port = local_port(getattr(settings, "STRIPE_API_HOST", ""))
            if stripe_port:
                self.start(
                    Child(
                        _t("fake Stripe API"),
                        ["-m", "integrations.devstack.stripe_api", str(stripe_port)],
                    )
                )
                wait_for_port(stripe_port)
            slack_port = local_port(settings.SLACK_API_URL)
            if slack_port:
                self.start(
                    Child(
                        _t("Slack stand-in"),
                        ["-m", "integrations.devstack.slack_api", str(slack_port)],
                    )
                )
                wait_for_port(slack_port)
                if not settings.SLACK_BOT_TOKEN:
                    self.env["SLACK_BOT_TOKEN"] = STAND_IN_SLACK_TOKEN
            if not no_setup:
                call_command("setup_local", base_url=f"http://{addrport}", stdout=self.stdout)
            if slack_port:
                messages = reverse("admin:integrations_connection_slack_messages")
                self.stdout.write(
                    _t("  Slack messages: %(url)s") % {"url": f"http://{addrport}{messages}"}
                )
            self.start(Child(_t("task cluster"), ["manage.py", "qcluster"], restart=True))
            self.start(Child(_t("web server"), ["manage.py", "runserver", addrport, "--noreload"]))
            self.supervise()
        finally:
            self.stop()

    def start(self, child):
        child.process = subprocess.Popen(
            [sys.executable, *child.argv],
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child.restart_at = None
        if child not in self.children:
            self.children.append(child)
        self.stdout.write(
            _t("Started %(name)s (pid %(pid)d).") % {"name": child.name, "pid": child.process.pid}
        )

    def request_stop(self, signum, frame):
        self.stopping = True

    def supervise(self):
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        self.start(child)
                    continue
                if child.running:
                    continue
                code = child.process.returncode
                if not child.restart:
                    self.stderr.write(
                        _t("%(name)s stopped (%(how)s); stopping everything.")
                        % {"name": capfirst(child.name), "how": how(code)}
                    )
                    return
                if not self.schedule_restart(child, code, now):
                    return
            time.sleep(0.2)

    def schedule_restart(self, child, code, now):
        """Plan the restart of a dead child; return False when it died too often."""
        kill_group(child.process.pid)  # its own workers, orphaned by a kill -9
        child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW]
        if len(child.restarts) >= MAX_RESTARTS:
            self.stderr.write(
                _t(
                    "%(name)s stopped (%(how)s), %(count)d times in %(window)d s: a restart "
                    "will not help; stopping everything."
                )
                % {
                    "name": capfirst(child.name),
                    "how": how(code),
                    "count": len(child.restarts) + 1,
                    "window": RESTART_WINDOW,
                }
            )
            return False
        delay = min(BACKOFF_CAP, 2 ** len(child.restarts))
        child.restarts.append(now)
        child.restart_at = now + delay
        self.stderr.write(
            _t(
                "%(name)s stopped (%(how)s); restarting it in %(delay)d s "
                "(the web server keeps serving)."
            )
            % {"name": capfirst(child.name), "how": how(code), "delay": delay}
        )
        return True

    def stop(self):
        for child in self.children:
            if child.running:
                child.process.terminate()  # the main process only: it stops its workers
        deadline = time.monotonic() + 15
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(
                    _t("%(name)s did not stop in time; killing it.")
                    % {"name": capfirst(child.name)}
                )
                child.process.kill()
                child.process.wait()
            kill_group(child.process.pid)
        if self.children:
            self.stdout.write(_t("Stopped."))
        self.children = []


def how(code):
    """Say how a process ended, from its return code (negative: the signal that killed it)."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return _t("killed by %(signal)s") % {"signal": name}
    return _t("exit status %(code)s") % {"code": code}


def kill_group(pgid):
    """Kill what is left of a dead child's session (its group id is its pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def local_port(url):
    """Return the port of a loopback stand-in to start for `url`, in development only:
    None in production, for a remote address, or when something already answers there
    (a stand-in started by hand)."""
    parts = urlsplit(url or "")
    if not settings.DEBUG or parts.hostname not in LOOPBACK:
        return None
    port = parts.port or 80
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return None
    return port


def wait_for_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"Nothing listens on 127.0.0.1:{port} after {timeout} s")
