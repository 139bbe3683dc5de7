"""JSON schemas (draft 2020-12) of the CLI's ``--json`` output, shipped with the package.

- ``run.schema.json``: ``sparsekit run KERNEL --json`` and ``--output`` files;
- ``workload.schema.json``: ``sparsekit run RECIPE --json``;
- ``backends.schema.json``: ``sparsekit backends --json``.

``load(name)`` returns one as a dict; ``validate(instance, schema)`` checks an
instance against the subset of JSON Schema these files use (type, const, enum,
required, properties, additionalProperties, items, local ``$ref``), so that
sparsekit can check its own output without the ``jsonschema`` package; the
tests also validate with ``jsonschema`` itself when it is installed.
"""
from __future__ import annotations

import json
from pathlib import Path

_HERE = Path(__file__).parent

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def load(name: str) -> dict:
    """The schema called ``name`` (``"run"``, ``"workload"``, ``"backends"``)."""
    path = _HERE / f"{name}.schema.json"
    if not path.is_file():
        known = ", ".join(sorted(p.name.split(".")[0] for p in _HERE.glob("*.schema.json")))
        raise KeyError(f"no schema {name!r}: there are {known}")
    return json.loads(path.read_text())


def validate(instance, schema: dict) -> None:
    """Raise ``ValueError`` naming the JSON path of the first violation."""
    _check(instance, schema, schema, "$")


def _check(v, s: dict, root: dict, where: str) -> None:
    if "$ref" in s:
        ref = s["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"{where}: only local $ref is supported, got {ref!r}")
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        _check(v, target, root, where)
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(_TYPES[t](v) for t in types):
            raise ValueError(f"{where}: expected {' or '.join(types)}, got {type(v).__name__} {v!r:.80}")
    if "const" in s and v != s["const"]:
        raise ValueError(f"{where}: must be {s['const']!r}, got {v!r:.80}")
    if "enum" in s and v not in s["enum"]:
        raise ValueError(f"{where}: must be one of {s['enum']}, got {v!r:.80}")
    if isinstance(v, dict):
        for key in s.get("required", ()):
            if key not in v:
                raise ValueError(f"{where}: missing required key {key!r}")
        props = s.get("properties", {})
        extra = s.get("additionalProperties", True)
        for key, item in v.items():
            if key in props:
                _check(item, props[key], root, f"{where}.{key}")
            elif extra is False:
                raise ValueError(f"{where}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                _check(item, extra, root, f"{where}.{key}")
    if isinstance(v, list) and "items" in s:
        for i, item in enumerate(v):
            _check(item, s["items"], root, f"{where}[{i}]")
