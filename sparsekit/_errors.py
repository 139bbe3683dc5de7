"""Exception types of the public API.

Every error names the offending thing, so a user reading a traceback from a
long sweep knows which kernel, backend, parameter or file was wrong.
"""


class SparsekitError(Exception):
    """Base class of sparsekit's own errors."""


class Unsupported(SparsekitError):
    """A backend does not implement this kernel, format or dtype.

    Raised by ``Backend.prepare``; asv shows the combination as n/a and pytest
    skips it with ``reason``. Nothing ever falls back silently.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BackendUnavailable(SparsekitError, RuntimeError):
    """A registered backend cannot run on this machine (missing library, no device)."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"backend {name!r} is unavailable: {reason}")
        self.name = name
        self.reason = reason


class _NamedKeyError(KeyError):
    # KeyError.__str__ repr()s its argument, which turns a readable message into
    # a quoted string; print it as the plain sentence instead.
    def __str__(self) -> str:  # pragma: no cover - trivial
        return str(self.args[0]) if self.args else ""


class UnknownKernelError(_NamedKeyError, SparsekitError):
    """A kernel name that is not in the catalogue."""


class UnknownBackendError(_NamedKeyError, SparsekitError):
    """A backend name that no installed package registers."""
