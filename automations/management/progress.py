"""How long commands show progress: a bar on a terminal (tqdm), plain lines otherwise.

Every long command (sync_stripe, replay_events, reconcile_events, prune_runs, …) wraps its
loop in `progress(...)` and ends with `summary(...)`, so they all read alike and none draws
a bar into a log file or a pipe.
"""

import sys

from tqdm import tqdm

# Plain output prints a line every this many items (and at the end).
EVERY = 100


def is_tty(stream):
    return bool(getattr(stream, "isatty", None) and stream.isatty())


class Progress:
    """Counts items as a command works through them; a bar on a TTY, lines otherwise."""

    def __init__(self, stream, description, total=None, every=EVERY):
        self.stream = stream
        self.description = description
        self.total = total
        self.every = every
        self.count = 0
        self.bar = (
            tqdm(total=total, desc=description, file=stream, unit="", leave=False)
            if is_tty(stream)
            else None
        )

    def update(self, n=1):
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.count % self.every < n:
            self._line()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.count % self.every:
            self._line()

    def _line(self):
        of = f"/{self.total}" if self.total is not None else ""
        self.stream.write(f"{self.description}: {self.count}{of}\n")
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def progress(command, description, total=None):
    """Return a Progress on a management command's stdout (use it as a context manager)."""
    return Progress(
        getattr(command.stdout, "_out", command.stdout) or sys.stdout, description, total
    )


def summary(command, text, failed=False):
    """Write the command's one-line summary (to stderr in red if it failed)."""
    if failed:
        command.stderr.write(text)
    else:
        command.stdout.write(command.style.SUCCESS(text))
