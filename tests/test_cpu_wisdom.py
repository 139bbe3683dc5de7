"""The ``cpu`` backend's wisdom file and tuning: remembered when valid, ignored with a notice
when missing, corrupt, stale or another machine's, and never a reason to fail."""
from __future__ import annotations

import json

import pytest

import sparsekit as sk

pytest.importorskip("numba")
from sparsekit_cpu import tuning, wisdom  # noqa: E402
from sparsekit_cpu.backend import CpuBackend  # noqa: E402


@pytest.fixture(autouse=True)
def _quick(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SPARSEKIT_CPU_TUNE", raising=False)
    # tuning times candidates; one short round is enough to exercise it
    monkeypatch.setattr(tuning, "ROUNDS", 1)
    monkeypatch.setattr(tuning, "MIN_TIME", 0.001)
    monkeypatch.setattr(tuning, "SETTLE", 0.0)
    wisdom.NOTICES.clear()


def _problem():
    # n >= 2: the shortlist is {register tiles, copy + BLAS}, which only a measurement decides
    return sk.make_problem("gather_mm", m=200, k=40, n=8, rows=12, dtype="float32", seed=0)


def _prepare(tune=None):
    be = CpuBackend()
    be.tune = tune
    plan = be.prepare(_problem())
    plan()
    assert sk.check(_problem(), plan.result()).ok
    return plan.strategy


def _path():
    return wisdom.default_path()


def test_missing_wisdom_is_the_model_silently():
    st = _prepare(tune=False)
    assert st.name == "gather.tiles" and "remembered" not in st.reason and "tuned" not in st.reason
    assert not _path().exists() and not wisdom.NOTICES


def test_tuning_remembers_and_the_next_run_uses_it():
    st = _prepare(tune=True)
    assert st.reason.startswith("tuned")
    data = json.loads(_path().read_text())
    assert data["format"] == wisdom.FORMAT and data["code"] == wisdom.code_version()
    (entry,) = data["entries"].values()
    assert entry["strategy"] == st.name and set(entry["times"]) == {"gather.tiles", "gather.copy_blas"}
    again = _prepare(tune=False)  # tuning off: the remembered choice, not a new measurement
    assert again.name == st.name and again.reason.startswith("remembered")


def test_tuning_on_through_the_environment(monkeypatch):
    monkeypatch.setenv("SPARSEKIT_CPU_TUNE", "1")
    assert tuning.enabled()
    assert _prepare().reason.startswith("tuned")


def _tune_then_edit(edit):
    _prepare(tune=True)
    data = json.loads(_path().read_text())
    edit(data)
    _path().write_text(json.dumps(data))


@pytest.mark.parametrize("case,words", [
    ("corrupt", "corrupt"),
    ("not wisdom", "corrupt"),
    ("stale", "stale"),
    ("other machine", "another machine"),
])
def test_unusable_wisdom_is_ignored_with_a_notice_and_replaced(case, words):
    if case == "corrupt":
        _path().parent.mkdir(parents=True, exist_ok=True)
        _path().write_text("{ not json")
    elif case == "not wisdom":
        _path().parent.mkdir(parents=True, exist_ok=True)
        _path().write_text(json.dumps({"hello": 1}))
    elif case == "stale":
        _tune_then_edit(lambda d: d.update(code="0" * 16))
    else:
        _tune_then_edit(lambda d: d.update(machine="f" * 16))
    wisdom.NOTICES.clear()
    st = _prepare(tune=False)
    assert "remembered" not in st.reason
    assert any(words in n for n in wisdom.NOTICES), wisdom.NOTICES
    _prepare(tune=True)  # tuning replaces the unusable file with this machine's
    assert json.loads(_path().read_text())["code"] == wisdom.code_version()


def test_a_remembered_strategy_off_the_shortlist_is_not_used():
    _tune_then_edit(lambda d: [e.update(strategy="gather.dot") for e in d["entries"].values()])
    assert _prepare(tune=False).name == "gather.tiles"


def test_an_unwritable_wisdom_folder_is_a_notice(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SPARSEKIT_CACHE_DIR", str(blocker / "sub"))  # a folder below a file
    st = _prepare(tune=True)
    assert st.reason.startswith("tuned")
    assert any("not saved" in n for n in wisdom.NOTICES)


def test_problem_classes_bucket_sizes_not_values():
    f = dict(n=128, m=4096, k=4096, density=0.1, imbalance=1.0)
    same = dict(f, m=4000, density=0.11)
    assert wisdom.problem_class("spmm", "float32", f) == wisdom.problem_class("spmm", "float32", same)
    assert wisdom.problem_class("spmm", "float32", f) != wisdom.problem_class("spmm", "float32", dict(f, n=1))
    assert wisdom.problem_class("spmm", "float32", f) != wisdom.problem_class("spmm", "float64", f)
    assert wisdom.problem_class("spmm", "float32", f) != wisdom.problem_class("spmm", "float32", dict(f, imbalance=3.0))


def test_tune_function_for_calibrate():
    lines = []
    rows = tuning.tune([dict(kernel="gather_mm", m=200, k=40, n=8, rows=12),
                        dict(kernel="spmm", m=400, k=400, n=1, sparsity=0.5)], progress=lines.append)
    assert len(rows) == len(lines) == 2 and rows[0]["reason"].startswith("tuned")
    # only the problems the model could not decide were timed and remembered
    tuned = sum(r["reason"].startswith("tuned") for r in rows)
    assert len(json.loads(_path().read_text())["entries"]) == tuned
