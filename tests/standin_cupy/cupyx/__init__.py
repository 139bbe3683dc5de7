"""Stand-in for ``cupyx`` (see ``cupy/__init__.py``)."""
