"""A plain progress bar on standard error, for long reads in the CLI."""

import sys
import time


class ProgressBar:
    """Counts steps towards a total and redraws one line on a stream.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressBar("reading", stream=out)
    >>> bar.start(4)
    >>> for _ in range(4):
    ...     bar.step()
    >>> bar.finish()
    >>> out.getvalue().splitlines()[-1].startswith("reading [##############################] 4/4")
    True
    """

    def __init__(self, label, stream=None, width=30):
        self.label, self.width = label, width
        self.stream = sys.stderr if stream is None else stream
        self.total = self.done = 0
        self._started = time.monotonic()

    def start(self, total):
        self.total, self.done, self._started = total, 0, time.monotonic()
        self._draw()

    def step(self, count=1):
        self.done += count
        self._draw()

    def finish(self):
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self):
        filled = self.width * self.done // max(self.total, 1)
        elapsed = time.monotonic() - self._started
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{self.done}/{self.total} {elapsed:.1f}s")
        self.stream.flush()
