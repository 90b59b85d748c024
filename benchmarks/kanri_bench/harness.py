"""The shared Stripe-webhook harness (loadgen.py, sink.py, floor/), found by an option.

Its default place is `../shared/bench` beside the checkout (`--harness` changes it). The
harness is standard library only; its loadgen module is imported from there for the
signature helper and its percentile rule, so both sides of a table agree."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the Kanri checkout
DEFAULT = ROOT.parent / "shared" / "bench"
WEBHOOK_SECRET = "whsec_benchbenchbenchbenchbenchbench"  # loadgen's default secret


class Harness:
    def __init__(self, location=None):
        self.dir = Path(location or DEFAULT).resolve()
        for name in ("loadgen.py", "sink.py", "floor/manage.py"):
            if not (self.dir / name).exists():
                raise SystemExit(
                    f"No {name} in {self.dir}: pass --harness DIR (the shared bench harness)."
                )
        spec = importlib.util.spec_from_file_location("loadgen", self.dir / "loadgen.py")
        self.loadgen = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.loadgen)

    @property
    def floor_dir(self):
        return self.dir / "floor"

    def sink_argv(self, port):
        return [sys.executable, self.dir / "sink.py", "--port", port]

    def loadgen_argv(self, *, url, sink, label, out, raw, load, seed, drain_timeout, objects):
        cmd = [sys.executable, self.dir / "loadgen.py", "--url", url, "--secret", WEBHOOK_SECRET]
        cmd += ["--sink", sink, "--label", label, "--out", out, "--raw", raw]
        cmd += ["--match-fraction", load["match"], "--resend-fraction", load.get("resend", 0.0)]
        cmd += ["--seed", seed, "--max-wall", 300, "--timeout", 30]
        # A backlog drains after the last ack: allow for it, but stop once Slack is quiet.
        cmd += ["--drain-timeout", drain_timeout, "--drain-idle", 15]
        if "rate" in load:
            cmd += ["--rate", load["rate"], "--duration", load["duration"]]
        else:
            cmd += ["--concurrency", load["concurrency"], "--n", load["n"]]
        if load.get("warmup"):
            cmd += ["--warmup", load["warmup"]]
        if objects:
            cmd += ["--objects", objects]
        return [str(c) for c in cmd]

    def percentile(self, values, p):
        """loadgen.py's rank rule."""
        return self.loadgen.pct(sorted(values), p)

    def signed(self, body, t):
        return self.loadgen.stripe_signature(WEBHOOK_SECRET, body, t)
