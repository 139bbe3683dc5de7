"""The CLI's ``--json`` output validates against the schemas shipped in ``sparsekit/schemas``.

Real output (in-process runs on the numpy backend, tiny problems) is checked with
sparsekit's own subset validator and, where installed, with ``jsonschema``'s
Draft 2020-12 validator -- which also checks that the schema files are valid.
"""
from __future__ import annotations

import copy
import functools
import json

import pytest

from sparsekit import cli, measure, schemas, sweep, timing


@pytest.fixture(autouse=True)
def quick_timing(monkeypatch):
    monkeypatch.setattr(measure, "time_plan", functools.partial(timing.time_plan, min_time=1e-3, max_time=0.2))


def _json(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, json.loads(out), err


@pytest.fixture(scope="module")
def run_doc():
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(["run", "spmm", "--backend", "numpy", "--shape", "32x32x4", "--sparsity", "0.5,0.9",
                       "--dtype", "float16", "--repeat", "1", "--json", "--in-process"])
    assert rc == 1  # float16 is n/a on numpy: rows with nulls exercise the nullable fields
    return json.loads(buf.getvalue())


def _validators(schema):
    yield lambda inst: schemas.validate(inst, schema)
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    yield v.validate


def test_run_json_validates(capsys, run_doc):
    rc, doc, err = _json(capsys, "run", "spmm", "--backend", "numpy", "--shape", "32x32x4", "--sparsity", "0.5,0.9",
                         "--repeat", "1", "--json", "--in-process")
    assert rc == 0, err
    schema = schemas.load("run")
    for validate in _validators(schema):
        validate(doc)
        validate(run_doc)
    assert doc["meta"]["versions"]["numpy"] and doc["meta"]["backends"]["numpy"]["device"]
    assert all(r["params"]["seed"] == 0 for r in doc["rows"])


def test_each_kernel_json_validates(capsys):
    schema = schemas.load("run")
    for argv in (["lif", "--shape", "16x12x5", "--sparsity", "0.9"], ["kwta", "--shape", "32x4", "--sparsity", "0.5"],
                 ["moe", "--shape", "8x16x4", "--experts", "4", "--top-k", "1"]):
        rc, doc, err = _json(capsys, "run", *argv, "--backend", "numpy", "--repeat", "1", "--json", "--in-process")
        assert rc == 0, err
        schemas.validate(doc, schema)


def test_output_file_validates(capsys, tmp_path):
    out = tmp_path / "sub" / "run.json"
    rc = cli.main(["run", "spmm", "--backend", "numpy", "--shape", "16x16x2", "--sparsity", "0.5", "--repeat", "1",
                   "--no-progress", "--in-process", "--output", str(out)])
    capsys.readouterr()
    assert rc == 0
    doc = json.loads(out.read_text())
    schemas.validate(doc, schemas.load("run"))
    assert doc["meta"]["status"] == "complete" and len(doc["rows"]) == 1
    assert not list(out.parent.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_backends_json_validates(capsys):
    rc, doc, err = _json(capsys, "backends", "--json")
    assert rc == 0
    for validate in _validators(schemas.load("backends")):
        validate(doc)


def test_workload_schema_is_valid():
    for validate in _validators(schemas.load("workload")):
        validate({"workload": "x", "data": {}, "notes": []})


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d.pop("meta"), "meta"),
    (lambda d: d["rows"][0].update(status="fine"), "status"),
    (lambda d: d["rows"][0].update(time_s="fast"), "time_s"),
    (lambda d: d["meta"].update(seed=1.5), "seed"),
    (lambda d: d["rows"][0].update(surprise=1), "surprise"),
    (lambda d: d["break_even"].update(numpy=0.5), "break_even"),
])
def test_validator_rejects_broken_documents(run_doc, mutate, where):
    doc = copy.deepcopy(run_doc)
    mutate(doc)
    with pytest.raises(ValueError, match=where):
        schemas.validate(doc, schemas.load("run"))


def test_unknown_schema_is_a_key_error():
    with pytest.raises(KeyError, match="run"):
        schemas.load("nope")
