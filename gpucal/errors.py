"""Exceptions gpucal raises for problems a user can fix."""


class FrameError(ValueError):
    """A file or array cannot be used as a frame.

    The message names the file (where there is one) and the problem: not FITS,
    no image, wrong dimensionality, a mask or uncertainty of the wrong shape,
    an unreadable unit.
    """


class GPUUnavailableError(RuntimeError):
    """The GPU was asked for, but none is usable; the message says why."""
