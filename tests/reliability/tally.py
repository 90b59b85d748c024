"""Counts the reliability layer prints at the end: what was injected and what was seen.

Tests add to named counters as they go (`tally.add("deliveries_sent", 5)`); the
conftest prints them grouped, and pairs that must match (expected vs done) are checked
there, so one summary answers "was anything lost, doubled or answered with a 5xx".
"""

from collections import Counter

# (label, expected counter, observed counter): each pair must be equal at the end.
MUST_MATCH = (
    ("runs", "runs_expected", "runs_done"),
    ("side effects", "side_effects_expected", "side_effects_observed"),
)
# Counters that must stay at zero.
MUST_BE_ZERO = ("responses_5xx", "lost", "duplicated")

GROUPS = (
    ("Deliveries", ("deliveries_sent", "duplicates_injected")),
    ("Runs", ("runs_expected", "runs_done")),
    ("Side effects", ("side_effects_expected", "side_effects_observed")),
    ("Bad inputs", ("bad_inputs_tried", "responses_5xx")),
    ("Losses", ("lost", "duplicated")),
)


class Tally:
    def __init__(self):
        self.counts = Counter()
        self.faults = Counter()

    def add(self, name, n=1):
        self.counts[name] += n

    def fault(self, kind, n=1):
        """Record an injected fault by kind ("worker kill -9", "redis restart", …)."""
        self.faults[kind] += n

    def problems(self):
        found = [
            f"{label}: expected {self.counts[a]}, got {self.counts[b]}"
            for label, a, b in MUST_MATCH
            if self.counts[a] != self.counts[b]
        ]
        found += [f"{name} = {self.counts[name]}" for name in MUST_BE_ZERO if self.counts[name]]
        return found

    def lines(self):
        out = []
        for title, names in GROUPS:
            out.append(f"{title}: " + ", ".join(f"{n} {self.counts[n]}" for n in names))
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(self.faults.items())) or "none"
        out.append(f"Faults injected: {sum(self.faults.values())} ({faults})")
        return out


tally = Tally()
