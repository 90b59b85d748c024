import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run Kanri locally: the web server and a django-q2 cluster together (plus the fake "
        "Stripe API when STRIPE_API_HOST points at this machine). Ctrl-C stops them all."
    )

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument(
            "--no-setup", action="store_true", help="Skip `setup_local` (demo admin, endpoint)."
        )

    def handle(self, *args, addrport, no_setup, **options):
        self.children = []
        self.stopping = False
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        try:
            fake = local_stripe_fake_port()
            if fake:
                self.start("fake Stripe API", "-m", "tests.fakes.stripe_api", str(fake))
                wait_for_port(fake)
            if not no_setup:
                call_command("setup_local", base_url=f"http://{addrport}", stdout=self.stdout)
            self.start("task cluster", "manage.py", "qcluster")
            self.start("web server", "manage.py", "runserver", addrport, "--noreload")
            self.wait()
        finally:
            self.stop()

    def start(self, name, *argv):
        self.stdout.write(f"Starting {name}…")
        self.children.append((name, subprocess.Popen([sys.executable, *argv])))

    def request_stop(self, signum, frame):
        self.stopping = True

    def wait(self):
        while not self.stopping:
            for name, process in self.children:
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with {process.returncode}; stopping.")
                    return
            time.sleep(0.3)

    def stop(self):
        for _name, process in self.children:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for name, process in self.children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it.")
                process.kill()
                process.wait()
        if self.children:
            self.stdout.write("Stopped.")
        self.children = []


def local_stripe_fake_port():
    """Return the port for the fake Stripe API if development points the SDK at loopback."""
    base = getattr(settings, "STRIPE_API_HOST", "")
    parts = urlsplit(base)
    if not settings.DEBUG or parts.hostname not in ("127.0.0.1", "localhost"):
        return None
    port = parts.port or 80
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return None  # something (a fake started by hand) already answers there
    return port


def wait_for_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"Nothing listens on 127.0.0.1:{port} after {timeout} s")
