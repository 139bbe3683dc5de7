"""Stand-in for ``cupy._core`` (see ``cupy/__init__.py``)."""
