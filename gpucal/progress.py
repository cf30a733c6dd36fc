"""A plain progress bar on standard error, for long reads in the CLI."""

import sys
import time


class ProgressBar:
    """Counts steps towards a total and shows them on one line of a stream.

    On a terminal the line is redrawn at most every `interval` seconds; on a
    pipe or a log file only the final line is written, by :meth:`finish`.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressBar("reading", stream=out)
    >>> bar.start(4)
    >>> for _ in range(4):
    ...     bar.step()
    >>> bar.finish()
    >>> out.getvalue().startswith("reading [##############################] 4/4")
    True
    """

    def __init__(self, label, stream=None, width=30, interval=0.2):
        self.label, self.width, self.interval = label, width, interval
        self.stream = sys.stderr if stream is None else stream
        self.total = self.done = 0
        self._started = self._drawn = None

    def start(self, total):
        self.total, self.done = total, 0
        self._started = time.monotonic()
        self._drawn = 0.0
        self._draw()

    def step(self, count=1):
        self.done += count
        if time.monotonic() - self._drawn >= self.interval:
            self._draw()

    def finish(self):
        if self._started is None:
            return
        self._draw(final=True)
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, final=False):
        isatty = getattr(self.stream, "isatty", lambda: False)()
        if not (final or isatty):
            return
        filled = self.width * self.done // max(self.total, 1)
        elapsed = time.monotonic() - self._started
        self.stream.write(f"{chr(13) if isatty else ''}{self.label} "
                          f"[{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{self.done}/{self.total} {elapsed:.1f}s")
        self.stream.flush()
        self._drawn = time.monotonic()
