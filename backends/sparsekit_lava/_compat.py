"""Python 3.11 compatibility shim for lava-nc 0.10.0, applied only when importing Lava.

lava-nc 0.10.0 declares Python < 3.11, and on 3.11 ``import lava.magma.compiler``
fails while defining ``CoreEncoder`` (``lava/magma/compiler/var_model.py``)::

    ValueError: mutable default <class '...ByteEncoder'> for field x is not allowed:
    use default_factory

Python 3.11 widened dataclasses' "mutable default" test from list/dict/set to any
*unhashable* default, and ``ByteEncoder`` is an ordinary (hence unhashable,
``eq=True``) dataclass used as a class-level default. The shim wraps
``dataclasses._get_field`` so that such a default becomes
``field(default_factory=lambda v=d: copy.copy(v))`` -- each instance gets its own
copy, which is what the Lava authors meant and what 3.10 did not enforce.

Scope: ``import_lava()`` installs the wrapper, imports the Lava modules the
backend needs (each defines its dataclasses once, at import), then restores the
original ``_get_field``; nothing outside that import sees the change. Every other
part of Lava runs unchanged on numpy 2.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import sys
import threading

_lock = threading.Lock()


def _needs_shim() -> bool:
    return sys.version_info >= (3, 11)


def _tolerant_get_field(original):
    def _get_field(cls, a_name, a_type, *args, **kwargs):
        default = cls.__dict__.get(a_name, dataclasses.MISSING)
        if (
            default is not dataclasses.MISSING
            and not isinstance(default, (dataclasses.Field, type))
            and type(default).__hash__ is None
            and dataclasses.is_dataclass(default)
        ):
            # only dataclass instances (ByteEncoder): a stray list default still fails loudly
            setattr(cls, a_name, dataclasses.field(default_factory=lambda v=default: copy.copy(v)))
        return original(cls, a_name, a_type, *args, **kwargs)

    _get_field.__wrapped__ = original
    return _get_field


@contextlib.contextmanager
def mutable_defaults_allowed():
    """Within the block, dataclass-instance defaults become per-instance copies (see module doc)."""
    if not _needs_shim():
        yield
        return
    with _lock:
        original = dataclasses._get_field
        dataclasses._get_field = _tolerant_get_field(original)
        try:
            yield
        finally:
            dataclasses._get_field = original


#: the Lava modules the backend uses; importing them under the shim defines every
#: dataclass they pull in (the compiler's var models included)
MODULES = (
    "lava.magma.core.run_configs",
    "lava.magma.core.run_conditions",
    "lava.magma.compiler.var_model",
    "lava.magma.compiler.compiler",
    "lava.magma.runtime.runtime",
    "lava.proc.dense.process",
    "lava.proc.dense.models",
    "lava.proc.sparse.process",
    "lava.proc.sparse.models",
    "lava.proc.lif.process",
    "lava.proc.lif.models",
    "lava.proc.io.source",
    "lava.proc.io.extractor",
    "lava.utils.weightutils",
)


@contextlib.contextmanager
def fork_start_method_tolerated():
    """Lava runs ``multiprocessing.set_start_method('fork')`` at import, which raises
    "context has already been set" when anything (Numba, for one) already chose a
    method -- even 'fork'. Within the block, asking again for the method already in
    effect is a no-op; asking to change it still fails, with a message saying why."""
    import multiprocessing

    original = multiprocessing.set_start_method

    def set_start_method(method, force=False):
        current = multiprocessing.get_start_method(allow_none=True)
        if not force and current == method:
            return
        if not force and current is not None:
            raise RuntimeError(f"Lava needs the multiprocessing start method {method!r}, "
                               f"but this process already uses {current!r}")
        return original(method, force=force)

    multiprocessing.set_start_method = set_start_method
    try:
        yield
    finally:
        multiprocessing.set_start_method = original


def import_lava():
    """Import Lava's modules the backend needs, under the shims; returns ``{module name: module}``."""
    with mutable_defaults_allowed(), fork_start_method_tolerated():
        return {name: importlib.import_module(name) for name in MODULES}
