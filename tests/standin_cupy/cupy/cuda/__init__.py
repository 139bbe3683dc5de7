"""Stand-in for ``cupy.cuda`` (see ``cupy/__init__.py``)."""
from . import device, memory, runtime  # noqa: F401


class Device:
    def __init__(self, index=0):
        self.id = int(index)

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Stream:
    """Counts synchronisations, so a test can see a plan wait for its work."""

    def __init__(self):
        self.synchronized = 0

    def synchronize(self):
        self.synchronized += 1


_stream = Stream()


def get_current_stream():
    return _stream
