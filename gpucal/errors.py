"""Exceptions gpucal raises for problems a user can fix."""


class FrameError(ValueError):
    """A file or array cannot be used as a frame.

    The message names the file (where there is one) and the problem: not FITS,
    no image, wrong dimensionality, a mask or uncertainty of the wrong shape,
    an unreadable unit.
    """


class GPUUnavailableError(RuntimeError):
    """The GPU was asked for, but none is usable; the message says why."""


class MissingKeywordError(KeyError, ValueError):
    """A header lacks a keyword a step needs (EXPTIME for a scaled dark, a gain keyword...).

    Both a KeyError (a lookup failed) and a ValueError (the input cannot be used); the
    message names the keyword and says what to pass instead.
    """

    def __str__(self):  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class OutputBusyError(RuntimeError):
    """Another gpucal run is writing the output directory (it holds its lock file)."""


class DiskFullError(OSError):
    """The output directory's disk (or the user's quota, or the file size limit) is full.

    A night stops at once: what was written before is complete and recorded.
    """


class DamagedDatabaseError(ValueError):
    """The results database is damaged; the message says how to rebuild it from the products."""


def require_pixels(shape, what):
    """Refuse an image or stack with no pixels (a 0 among its sides).

    Parameters
    ----------
    shape : tuple of int
    what : str
        Names the input in the message: ``"<what> has no pixels (shape ...)"``.

    Raises
    ------
    FrameError
        If any side of `shape` is 0.
    """
    if 0 in tuple(shape):
        raise FrameError(f"{what} has no pixels (shape {tuple(shape)})")


class FrameTypeError(FrameError, TypeError):
    """Inputs of the wrong kind for a step (frames of different shapes or units, something
    that is not a list of images): a FrameError, and the TypeError ccdproc raises."""
