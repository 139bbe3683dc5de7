"""Across commits: two fabricated result files with a known slowdown, a known accuracy loss and
noise, a new failure, a vanished benchmark; the comparison classifies each, and the gate says no."""
from __future__ import annotations

import json

import pytest

from sparsekit import changes
from test_report import COLUMNS, DATE, STARTED, result_file

A, B = "a" * 40, "b" * 40
NAME_T = "bench_spmm.SpMM.time_spmm"
NAME_E = "bench_spmm.SpMM.track_error"
PARAMS = [["cpu"], ["uniform"], ["2048x2048x64"], [0.5, 0.9, 0.99]]


def row(values, ci_half=None, samples=None):
    """A benchmark row with per-combination 99% intervals of +-ci_half (relative) around each value."""
    n = len(values)
    lo = [None if v is None or ci_half is None else v * (1 - ci_half) for v in values]
    hi = [None if v is None or ci_half is None else v * (1 + ci_half) for v in values]
    return [values, [[repr(v) for v in vals] for vals in PARAMS], "1", STARTED, 1.0, lo, hi, lo, hi,
            [1] * n, [10] * n, samples or [None] * n, [None] * n]


def files(tmp_path, old: dict, new: dict):
    root = tmp_path / "results"
    (root).mkdir()
    names = {NAME_T: ["backend", "pattern", "shape", "sparsity"], NAME_E: ["backend", "pattern", "shape", "sparsity"],
             "bench_spmm.SpMM.time_gone": ["backend", "pattern", "shape", "sparsity"]}
    (root / "benchmarks.json").write_text(json.dumps({n: {"param_names": p} for n, p in names.items()}))
    result_file(root / "box", old, commit=A, date=DATE)
    result_file(root / "box", new, commit=B, date=DATE + 1000)
    return root


def test_each_change_is_classified(tmp_path):
    old = {NAME_T: row([0.010, 0.004, 0.001], 0.02), NAME_E: row([1e-7, 2e-7, 3e-6]),
           "bench_spmm.SpMM.time_gone": row([0.5, 0.5, 0.5], 0.02)}
    # 0.5: 2x slower, tight intervals -> slower; 0.9: 1.5x but wide, overlapping intervals -> noise;
    # 0.99: failed now. Errors: 0.5 doubles from 1e-7 (rounding noise, not flagged), 0.99 grows 3e-6 -> 4e-5.
    new = {NAME_T: row([0.020, 0.006, None], 0.4), NAME_E: row([2e-7, 2e-7, 4e-5])}
    root = files(tmp_path, old, new)
    found = changes.changes_since(root, "box")
    assert (found["base"], found["head"]) == (A, B)
    kinds = {(c.benchmark.split(".")[-1], c.params.get("sparsity")): c.kind for c in found["changes"]}
    assert kinds[("time_spmm", 0.5)] == "slower"
    assert kinds[("time_spmm", 0.9)] == "noise"
    assert kinds[("time_spmm", 0.99)] == "new failure"
    assert kinds[("track_error", 0.99)] == "accuracy loss"
    assert ("track_error", 0.5) not in kinds  # 1e-7 -> 2e-7: below the error floor
    assert kinds[("time_gone", 0.5)] == "vanished"
    slow = next(c for c in found["changes"] if c.kind == "slower")
    assert slow.ratio == pytest.approx(2.0) and slow.key == "bench_spmm.SpMM.time_spmm('cpu', 'uniform', '2048x2048x64', 0.5)"
    assert not changes.gate(found["changes"])  # unconfirmed regressions block
    lines = changes.summary_lines(found)
    assert lines[0].startswith("== box: changed since aaaaaaaa") and "new failure" in lines[1]
    # stored results alone accuse nobody: each regression says it was not re-measured, and how to
    assert all(line.endswith("[not re-measured]") for line in lines[1:] if line.lstrip().startswith(changes.REGRESSIONS))
    assert lines[-1].startswith("not re-measured:") and "--confirm" in lines[-1]


def test_same_numbers_no_change(tmp_path):
    same = {NAME_T: row([0.010, 0.004, 0.001], 0.02), NAME_E: row([1e-7, 2e-7, 3e-6])}
    root = files(tmp_path, same, same)
    found = changes.changes_since(root, "box")
    assert found["changes"] == [] and changes.gate(found["changes"])
    assert changes.summary_lines(found)[1] == "no change beyond the factor"


def test_samples_use_asv_test(tmp_path):
    """With recorded samples, asv's Mann-Whitney test decides (if asv is installed); overlapping
    distributions are noise even when the medians differ by the factor."""
    pytest.importorskip("asv")
    s_old = [[0.010 + 0.001 * i for i in range(10)], [0.004] * 10, [0.001] * 10]
    s_new = [[0.0135 + 0.001 * i for i in range(10)], [0.004] * 10, [0.001] * 10]
    old = {NAME_T: row([0.0145, 0.004, 0.001], 0.5, s_old)}
    new = {NAME_T: row([0.019, 0.004, 0.001], 0.5, s_new)}
    found = changes.changes_since(files(tmp_path, old, new), "box")
    [c] = found["changes"]
    assert c.ratio > changes.FACTOR and c.kind == "noise"


def test_confirmations_are_stored_and_shown(tmp_path, monkeypatch):
    old = {NAME_T: row([0.010, 0.004, 0.001], 0.02)}
    new = {NAME_T: row([0.020, 0.004, 0.001], 0.02)}
    root = files(tmp_path, old, new)
    found = changes.changes_since(root, "box")

    def remeasure(repo, machine, commits, bench, results_dir, **kw):
        # the side-by-side run finds both commits equally fast: the stored slowdown was noise
        assert commits == [A, B] and bench == ["^" + __import__("re").escape(found["changes"][0].key) + "$"]
        result_file(results_dir / machine, {NAME_T: row([0.010, 0.004, 0.001], 0.02)}, commit=A, date=DATE)
        result_file(results_dir / machine, {NAME_T: row([0.0105, 0.004, 0.001], 0.02)}, commit=B, date=DATE + 1)
        return 0

    monkeypatch.setattr(changes, "run_side_by_side", remeasure)
    changes.confirm(found["changes"], tmp_path, "box", A, B, scratch=tmp_path / "scratch")
    [c] = found["changes"]
    assert c.confirmation == "noise" and c.remeasured == {"before": 0.010, "after": 0.0105}
    assert changes.gate(found["changes"])  # noise does not block
    changes.save_confirmations(root / "box", A, B, found["changes"])
    again = changes.changes_since(root, "box")
    assert again["changes"][0].confirmation == "noise"
    assert "[noise: re-measured 10 ms -> 10.5 ms]" in changes.summary_lines(again)[1]


def test_confirmed_regression_fails_the_gate(tmp_path, monkeypatch):
    old = {NAME_T: row([0.010, 0.004, 0.001], 0.02)}
    new = {NAME_T: row([0.020, 0.004, 0.001], 0.02)}
    root = files(tmp_path, old, new)

    def remeasure(repo, machine, commits, bench, results_dir, **kw):
        result_file(results_dir / machine, old, commit=A, date=DATE)
        result_file(results_dir / machine, new, commit=B, date=DATE + 1)
        return 0

    monkeypatch.setattr(changes, "run_side_by_side", remeasure)
    assert changes.main(root, "box", do_confirm=True, gate_exit=True, repo=tmp_path, progress=False) == 1
    assert changes.main(root, "box", gate_exit=False, progress=False) == 0


@pytest.mark.parametrize("again, kind, confirmation", [
    (0.0106, "noise", "noise"),        # undecided before, equal now: noise, not a regression
    (0.0200, "slower", "confirmed"),   # undecided before, a clear 2x side by side: a regression
])
def test_an_undecided_slowdown_is_settled_by_the_remeasurement(tmp_path, monkeypatch, again, kind, confirmation):
    # 1.5x with wide, overlapping samples: the stored results cannot decide ("noise" beyond the factor)
    old = {NAME_T: row([0.010, 0.004, 0.001], 0.5)}
    new = {NAME_T: row([0.015, 0.004, 0.001], 0.5)}
    found = changes.changes_since(files(tmp_path, old, new), "box")
    [c] = found["changes"]
    assert c.kind == "noise" and c.ratio > changes.FACTOR

    def remeasure(repo, machine, commits, bench, results_dir, **kw):
        result_file(results_dir / machine, {NAME_T: row([0.010, 0.004, 0.001], 0.02)}, commit=A, date=DATE)
        result_file(results_dir / machine, {NAME_T: row([again, 0.004, 0.001], 0.02)}, commit=B, date=DATE + 1)
        return 0

    monkeypatch.setattr(changes, "run_side_by_side", remeasure)
    changes.confirm(found["changes"], tmp_path, "box", A, B, scratch=tmp_path / "scratch")
    assert (c.kind, c.confirmation) == (kind, confirmation)
    assert changes.gate(found["changes"]) == (kind == "noise")


def test_asv_config_keeps_the_project_settings(tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    conf = changes.asv_config(repo, tmp_path / "r", tmp_path / "h")
    assert conf["results_dir"] == str(tmp_path / "r") and conf["install_command"]
    assert conf["benchmark_dir"] == str(repo / "benchmarks")
