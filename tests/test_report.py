"""``sparsekit.report``: break-even tables from asv result files.

The fixtures are asv 0.6 result folders written into ``tmp_path``::

    results/benchmarks.json                      (param names; optional)
    results/<machine>/machine.json
    results/<machine>/<commit[:8]>-<env>.json    (version 2: result_columns + results)

``REAL_RESULT`` is a trimmed copy of a file ``asv run`` (0.6.6) wrote for this
suite, NaN and Infinity tokens included; the other files are built by
``result_file`` in the same layout from hand-picked times, so that speedups and
break-even points can be computed by hand.
"""
from __future__ import annotations

import ast
import itertools
import json
import math
import os
from pathlib import Path

import pytest

import sparsekit
from sparsekit import cli, io, report
from sparsekit.metrics import break_even

NAN = float("nan")
COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
           "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]
DATE = 1_795_254_139_000  # asv: the commit's date, ms since the epoch
STARTED = 1_795_254_237_737

PARAM_NAMES = {
    "bench_dense_mm.DenseMM.time_dense_mm": ["backend", "shape"],
    "bench_spmm.SpMM.time_spmm": ["backend", "pattern", "shape", "sparsity"],
    "bench_spmm.SpMMDLMC.time_spmm": ["backend", "matrix", "sparsity"],
    "bench_moe.MoE.time_moe": ["backend", "shape", "top_k"],
    "bench_dense_mm.DenseMM.track_error": ["backend", "shape"],
    "bench_spmm.SpMM.track_error": ["backend", "pattern", "shape", "sparsity"],
}


def bench_row(params: list[list], values: dict, started_at=STARTED) -> list:
    """One benchmark's row: ``values`` maps a param tuple to its time (missing: NaN, asv's n/a)."""
    results = [values.get(combo, NAN) for combo in itertools.product(*params)]
    n = len(results)
    stat = [None if (r is None or r != r) else r for r in results]
    return [results, [[repr(v) for v in vals] for vals in params], "1", started_at, 1.5,
            stat, stat, stat, stat, [None if s is None else 1 for s in stat], [None if s is None else 3 for s in stat],
            [None] * n, [None] * n]


def result_file(machine_dir: Path, results: dict, *, commit="1234567890abcdef" * 2 + "12345678", env="virtualenv-py3.11",
                date=DATE) -> Path:
    machine_dir.mkdir(parents=True, exist_ok=True)
    if not (machine_dir / "machine.json").exists():
        (machine_dir / "machine.json").write_text(json.dumps(
            {"arch": "x86_64", "cpu": "Test CPU", "machine": machine_dir.name, "num_cpu": "2", "os": "Linux",
             "ram": "8000000000", "version": 1}))
    data = {
        "commit_hash": commit, "env_name": env, "date": date,
        "params": {"arch": "x86_64", "cpu": "Test CPU", "machine": machine_dir.name, "num_cpu": "2", "os": "Linux",
                   "ram": "8000000000", "python": "3.11"},
        "python": "3.11", "requirements": {}, "env_vars": {}, "result_columns": COLUMNS,
        "results": results, "durations": {}, "version": 2,
    }
    path = machine_dir / f"{commit[:8]}-{env}.json"
    path.write_text(json.dumps(data))  # json writes NaN tokens, as asv does
    return path


def benchmarks_json(root: Path, names: dict = PARAM_NAMES) -> None:
    root.mkdir(parents=True, exist_ok=True)
    data = {name: {"name": name, "param_names": pn, "type": "time" if ".time_" in name else "track",
                   "unit": "seconds", "version": "1"} for name, pn in names.items()}
    data["version"] = 2
    (root / "benchmarks.json").write_text(json.dumps(data))


# -- the standard fixture: hand-picked times -----------------------------------------------------

BIG, SMALL = "2048x2048x64", "1024x1024x8"  # SMALL has no DenseMM partner
SPARSITIES = [0.5, 0.8, 0.9, 0.95]
DENSE = {("numpy", BIG): 0.010, ("cpu", BIG): 0.004, ("numpy", "512x512x256"): 0.004, ("numpy", "64x32x8"): 0.001}
#: numpy on BIG: speedups 0.25, 0.5, 1.25, 2.5 -> crossing between 0.8 and 0.9
NUMPY_BIG = [0.040, 0.020, 0.008, 0.004]
#: cpu on BIG: speedups 2, 4, (failed), 8 -> sparse wins from the lowest level
CPU_BIG = [0.002, 0.001, None, 0.0005]


def standard_results(numpy_big=NUMPY_BIG) -> dict:
    dense_params = [["numpy", "cpu", "opencl"], [BIG, "512x512x256", "64x32x8"]]
    spmm_params = [["numpy", "cpu", "opencl"], ["uniform"], [BIG, SMALL], SPARSITIES]
    spmm = {}
    for s, t_np, t_cpu in zip(SPARSITIES, numpy_big, CPU_BIG):
        spmm[("numpy", "uniform", BIG, s)] = t_np
        spmm[("cpu", "uniform", BIG, s)] = t_cpu
        spmm[("numpy", "uniform", SMALL, s)] = 0.001
        # cpu on SMALL and opencl everywhere: NaN (n/a) throughout -> no row
    dlmc_params = [["numpy", "cpu"], ["transformer_attn_q"], [0.5, 0.9, 0.98]]
    #: speedups 0.5, 2, 4 against numpy's 512x512x256 -> crossing at exactly 0.7
    dlmc = {("numpy", "transformer_attn_q", 0.5): 0.008, ("numpy", "transformer_attn_q", 0.9): 0.002,
            ("numpy", "transformer_attn_q", 0.98): 0.001}
    #: 4 experts of 16 rows: dense 64x32x8; top_k 1, 2, 4 -> sparsity 0.75, 0.5, 0
    moe_params = [["numpy"], ["4x16x32x8"], [1, 2, 4]]
    moe = {("numpy", "4x16x32x8", 1): 0.0005, ("numpy", "4x16x32x8", 2): 0.001, ("numpy", "4x16x32x8", 4): 0.002}
    return {
        "bench_dense_mm.DenseMM.time_dense_mm": bench_row(dense_params, {k: v for k, v in DENSE.items()}),
        "bench_spmm.SpMM.time_spmm": bench_row(spmm_params, spmm),
        "bench_dense_mm.DenseMM.track_error": bench_row(dense_params, {k: 1e-7 for k in DENSE}),
        "bench_spmm.SpMM.track_error": bench_row(spmm_params, {k: 1e-7 for k in spmm}),
        "bench_spmm.SpMMDLMC.time_spmm": bench_row(dlmc_params, dlmc),
        "bench_moe.MoE.time_moe": bench_row(moe_params, moe),
    }


@pytest.fixture
def results_dir(tmp_path):
    root = tmp_path / "results"
    benchmarks_json(root)
    result_file(root / "box", standard_results())
    return root


def by_key(rows) -> dict:
    return {(r["backend"], r["kernel"], r["variant"], r["shape"]): r for r in rows}


def _crossing(s0, v0, s1, v1):
    """Where log(speedup) crosses 0 on the segment (s0, v0) - (s1, v1), by hand."""
    return s0 + (0 - math.log(v0)) / (math.log(v1) - math.log(v0)) * (s1 - s0)


# -- summarize ---------------------------------------------------------------------------------------


def test_speedups_and_interpolated_break_even(results_dir):
    rows = by_key(report.summarize(results_dir))
    r = rows[("numpy", "spmm", "uniform", BIG)]
    assert r["machine"] == "box" and r["env"] == "virtualenv-py3.11" and r["commit"].startswith("12345678")
    assert r["dense_shape"] == BIG and r["dense_time"] == pytest.approx(0.010)
    assert r["sparsities"] == SPARSITIES
    assert r["times"] == pytest.approx(NUMPY_BIG)
    assert r["speedups"] == pytest.approx([0.25, 0.5, 1.25, 2.5])
    # linear in log(speedup) between (0.8, 0.5) and (0.9, 1.25): 0.8 + 0.1 * ln 2 / ln 2.5
    expected = 0.8 + 0.1 * math.log(2) / math.log(2.5)
    assert expected == pytest.approx(0.87565, abs=1e-5)
    assert r["break_even_sparsity"] == pytest.approx(expected)
    assert r["break_even_relation"] == "="
    assert r["break_even"] == f"{expected:.3f}" == "0.876"


def test_failed_and_na_results_are_skipped(results_dir):
    rows = by_key(report.summarize(results_dir))
    cpu = rows[("cpu", "spmm", "uniform", BIG)]
    assert cpu["times"] == [0.002, 0.001, None, 0.0005]  # null stays a hole, never a number
    assert cpu["speedups"][2] is None
    assert cpu["speedups"][0] == pytest.approx(2.0) and cpu["speedups"][3] == pytest.approx(8.0)
    assert cpu["break_even"] == "<=0.5" and cpu["break_even_relation"] == "<="
    # NaN throughout (n/a: the backend is not installed, or cannot do it) -> no row at all
    assert not any(b == "opencl" for b, *_ in rows)
    assert ("cpu", "spmm", "uniform", SMALL) not in rows
    assert not any(r["kernel"] == "dense_mm" for r in rows.values())
    # track_error is not a time: neither a sparse point nor a dense baseline
    assert len([k for k in rows if k[1] == "spmm" and k[2] == "uniform"]) == 3


def test_nan_at_the_crossing_moves_it(tmp_path):
    root = tmp_path / "results"
    result_file(root / "box", standard_results(numpy_big=[0.040, 0.020, NAN, 0.004]))
    r = by_key(report.summarize(root))[("numpy", "spmm", "uniform", BIG)]
    assert r["times"][2] is None and r["speedups"][2] is None
    expected = _crossing(0.8, 0.5, 0.95, 2.5)  # the 0.9 point is left out
    assert r["break_even_sparsity"] == pytest.approx(expected)
    assert r["break_even"] == f"{expected:.3f}"


def test_no_dense_partner(results_dir):
    r = by_key(report.summarize(results_dir))[("numpy", "spmm", "uniform", SMALL)]
    assert r["dense_time"] is None
    assert r["speedups"] == [None] * 4
    assert r["times"] == pytest.approx([0.001] * 4)
    assert r["break_even"] == "n/a (no dense_mm)"
    assert r["break_even_sparsity"] is None and r["break_even_relation"] == "?"


def test_dlmc_pairs_with_the_vendored_shape(results_dir):
    shape = "x".join(map(str, io.dlmc_benchmark_shape("transformer_attn_q")))
    assert shape == "512x512x256"
    rows = by_key(report.summarize(results_dir))
    r = rows[("numpy", "spmm", "dlmc:transformer_attn_q", shape)]
    assert r["dense_shape"] == shape and r["dense_time"] == pytest.approx(0.004)
    assert r["sparsities"] == [0.5, 0.9, 0.98]
    assert r["speedups"] == pytest.approx([0.5, 2.0, 4.0])
    assert r["break_even_sparsity"] == pytest.approx(0.7)  # ln 2 / (ln 2 + ln 2) of the way from 0.5 to 0.9
    assert r["break_even"] == "0.700"
    assert ("cpu", "spmm", "dlmc:transformer_attn_q", shape) not in rows  # NaN throughout


def test_moe_sparsity_comes_from_top_k(results_dir):
    r = by_key(report.summarize(results_dir))[("numpy", "moe", "", "4x16x32x8")]
    assert r["dense_shape"] == "64x32x8"  # experts x m stacked
    assert r["sparsities"] == pytest.approx([0.0, 0.5, 0.75])
    assert r["speedups"] == pytest.approx([0.5, 1.0, 2.0])
    assert r["break_even_sparsity"] == pytest.approx(0.5) and r["break_even"] == "0.500"


def test_rows_are_ordered(results_dir):
    rows = report.summarize(results_dir)
    kernels = [r["kernel"] for r in rows]
    assert kernels == sorted(kernels, key=sparsekit.kernels().index)  # catalogue order
    assert len(rows) == 5


def test_default_param_names_without_benchmarks_json(tmp_path, results_dir):
    with_names = report.summarize(results_dir)
    (results_dir / "benchmarks.json").unlink()
    without = report.summarize(results_dir)
    assert without == with_names
    assert len(without) == 5


def test_benchmarks_json_names_take_precedence(tmp_path):
    """A class the defaults do not know is read only with its param names from benchmarks.json."""
    root = tmp_path / "results"
    name = "bench_extra.MySpMM.time_spmm"
    params = [["numpy"], [BIG], [0.5, 0.9]]
    result_file(root / "box", {
        "bench_dense_mm.DenseMM.time_dense_mm": bench_row([["numpy"], [BIG]], {("numpy", BIG): 0.01}),
        name: bench_row(params, {("numpy", BIG, 0.5): 0.02, ("numpy", BIG, 0.9): 0.005}),
    })
    assert report.summarize(root) == []  # unknown class, no benchmarks.json: not guessed
    benchmarks_json(root, {**PARAM_NAMES, name: ["backend", "shape", "sparsity"]})
    [r] = report.summarize(root)
    assert (r["backend"], r["kernel"], r["variant"], r["shape"]) == ("numpy", "spmm", "", BIG)
    assert r["speedups"] == pytest.approx([0.5, 2.0])
    assert r["break_even_sparsity"] == pytest.approx(0.7)
    # names of the wrong length are not trusted either
    benchmarks_json(root, {**PARAM_NAMES, name: ["backend", "sparsity"]})
    assert report.summarize(root) == []


def test_newest_result_file_wins(tmp_path):
    root = tmp_path / "results"
    old = standard_results()
    new = standard_results(numpy_big=[0.02, 0.01, 0.005, 0.0025])  # speedups 0.5, 1, 2, 4
    result_file(root / "box", new, commit="b" * 40, date=DATE + 1000)
    result_file(root / "box", old, commit="a" * 40, date=DATE)
    r = by_key(report.summarize(root))[("numpy", "spmm", "uniform", BIG)]
    assert r["commit"] == "b" * 40
    assert r["speedups"] == pytest.approx([0.5, 1.0, 2.0, 4.0])
    # same commit date (two environments, a rerun): the later started_at wins, not the
    # file's mtime (set older here) nor its name (sorts first)
    rerun = {k: v[:3] + [v[3] + 10_000] + v[4:] for k, v in standard_results().items()}
    path = result_file(root / "box", rerun, commit="b" * 40, env="rerun", date=DATE + 1000)
    os.utime(path, (1_000_000, 1_000_000))
    r = by_key(report.summarize(root))[("numpy", "spmm", "uniform", BIG)]
    assert r["env"] == "rerun" and r["speedups"] == pytest.approx([0.25, 0.5, 1.25, 2.5])


def test_machine_filter(tmp_path):
    root = tmp_path / "results"
    benchmarks_json(root)
    result_file(root / "alpha", standard_results())
    result_file(root / "beta", standard_results(numpy_big=[0.02, 0.01, 0.005, 0.0025]))
    both = report.summarize(root)
    assert {r["machine"] for r in both} == {"alpha", "beta"}
    assert [r["machine"] for r in both] == sorted(r["machine"] for r in both)
    only = report.summarize(root, machine="beta")
    assert only and {r["machine"] for r in only} == {"beta"}
    assert by_key(only)[("numpy", "spmm", "uniform", BIG)]["speedups"] == pytest.approx([0.5, 1.0, 2.0, 4.0])
    assert len(both) == 2 * len(only)


def test_malformed_files_are_ignored(tmp_path):
    root = tmp_path / "results"
    result_file(root / "box", standard_results())
    (root / "box" / "zzzzzzzz-broken.json").write_text("{not json")
    (root / "box" / "yyyyyyyy-list.json").write_text("[1, 2, 3]")
    (root / ".hidden").mkdir()
    good = report.summarize(root)
    assert len(good) == 5
    # a result list that does not match its params is not paired by guesswork
    bad = standard_results()
    bad["bench_spmm.SpMM.time_spmm"][0] = bad["bench_spmm.SpMM.time_spmm"][0][:-1]
    bad["bench_moe.MoE.time_moe"] = None
    # six results over two params: the product fits, but SpMMDLMC has three param names
    bad["bench_spmm.SpMMDLMC.time_spmm"][1] = [["'numpy'", "'cpu'"], ["0.5", "0.9", "0.98"]]
    result_file(root / "box2", bad)
    rows = report.summarize(root, machine="box2")
    assert rows == []


def test_real_asv_file(tmp_path):
    root = tmp_path / "results"
    (root / "testbox").mkdir(parents=True)
    (root / "testbox" / "machine.json").write_text(REAL_MACHINE)
    (root / "testbox" / "aaaaaaaa-existing-py_usr_bin_python3.json").write_text(REAL_RESULT)
    data = json.loads(REAL_RESULT)
    dense = data["results"]["bench_dense_mm.DenseMM.time_dense_mm"][0]
    sparse = data["results"]["bench_spmm.SpMMDLMC.time_spmm"][0]
    levels = [0.5, 0.7, 0.8, 0.9, 0.95, 0.98]
    rows = by_key(report.summarize(root))  # no benchmarks.json: the default param names
    assert set(rows) == {(b, "spmm", "dlmc:transformer_attn_q", "512x512x256") for b in ("numpy", "cpu")}
    for i, b in enumerate(("numpy", "cpu")):
        r = rows[(b, "spmm", "dlmc:transformer_attn_q", "512x512x256")]
        assert r["machine"] == "testbox" and r["commit"] == "a" * 40
        assert r["dense_time"] == dense[i]
        assert r["sparsities"] == levels
        assert r["times"] == sparse[6 * i: 6 * i + 6]
        speedups = [dense[i] / t for t in sparse[6 * i: 6 * i + 6]]
        assert r["speedups"] == pytest.approx(speedups)
        assert r["break_even"] == str(break_even(levels, speedups))
    numpy = rows[("numpy", "spmm", "dlmc:transformer_attn_q", "512x512x256")]
    assert numpy["break_even_relation"] == "=" and 0.95 < numpy["break_even_sparsity"] < 0.98
    assert rows[("cpu", "spmm", "dlmc:transformer_attn_q", "512x512x256")]["break_even"] == "<=0.5"


def test_benchmark_classes_follow_the_kernel_specs():
    """Each kernel grid (KernelSpec.benchmarks) is an asv class with the grid's parameters, and the
    report reads results without benchmarks.json from the same grids (import in a child: importing
    benchmarks/ pins thread counts)."""
    code = (
        "import importlib, json, pkgutil, benchmarks\n"
        "out = {}\n"
        "for m in pkgutil.iter_modules(benchmarks.__path__):\n"
        "    if not m.name.startswith('bench_'): continue\n"
        "    mod = importlib.import_module('benchmarks.' + m.name)\n"
        "    for n, c in vars(mod).items():\n"
        "        if isinstance(c, type) and c.__module__ == mod.__name__ and hasattr(c, 'param_names'):\n"
        "            out[n] = [list(c.param_names), [[repr(v) for v in vals] for vals in c.params]]\n"
        "print(json.dumps(out))\n")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    classes = json.loads(proc.stdout)
    from sparsekit import results
    from sparsekit.kernels import specs

    for spec in specs():
        for g in spec.benchmarks:
            assert g.name in classes, f"{spec.name}: no benchmark class {g.name}"
            names, params = classes[g.name]
            assert names == ["backend", *g.param_names]
            assert params[1:] == [[repr(v) for v in vals] for vals in g.values()]
            assert results.param_names({}, f"bench_x.{g.name}.time_{spec.name}", len(names)) == names
    assert classes["DenseMM"][0] == results.DENSE_PARAM_NAMES


# -- main and the CLI ------------------------------------------------------------------------------------


def _no_nan(token):
    raise AssertionError(f"{token} is not JSON")


def test_main_json(results_dir, capsys):
    assert report.main(results_dir, fmt="json") == 0
    out, err = capsys.readouterr()
    doc = json.loads(out, parse_constant=_no_nan)  # strict JSON: no NaN/Infinity tokens
    rows = doc["break_even"]
    assert rows == json.loads(json.dumps(report.summarize(results_dir)))
    assert {r["break_even"] for r in rows} >= {"0.876", "<=0.5", "n/a (no dense_mm)", "0.700", "0.500"}
    [m] = doc["machines"]
    assert m["machine"] == "box" and m["headline"] and m["verdicts"]
    assert {v["verdict"] for v in m["verdicts"]} <= {"holds", "does not hold", "not measured here"} | {
        v["verdict"] for v in m["verdicts"] if v["verdict"].startswith(("depends", "partly", "about"))}
    assert err == ""


def test_main_table(results_dir, capsys):
    assert report.main(results_dir) == 0
    short = capsys.readouterr().out
    assert short.startswith("== where sparse beats dense") and "== verdicts" in short
    assert len(short.splitlines()) <= 35, "the terminal answer stays short; the rest is behind --all"
    assert report.main(results_dir, all_tables=True) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["machine", "backend", "kernel"]
    numpy_big = next(line for line in lines if "numpy" in line and BIG in line)
    assert "0.876" in numpy_big and "10 ms" in numpy_big
    assert "0.5:0.25x 0.8:0.50x 0.9:1.25x 0.95:2.50x" in numpy_big
    cpu_big = next(line for line in lines if line.split()[1] == "cpu")
    assert "0.9:n/a" in cpu_big and "<=0.5" in cpu_big
    assert any("n/a (no dense_mm)" in line for line in lines)


def test_main_machine_filter(tmp_path, capsys):
    root = tmp_path / "results"
    result_file(root / "alpha", standard_results())
    result_file(root / "beta", standard_results())
    assert report.main(root, machine="alpha", fmt="json") == 0
    assert {r["machine"] for r in json.loads(capsys.readouterr().out)["break_even"]} == {"alpha"}
    assert report.main(root, machine="gamma") == 1
    err = capsys.readouterr().err
    assert "gamma" in err and "alpha" in err and "beta" in err


def test_main_missing_results_dir(tmp_path, capsys):
    missing = tmp_path / "no_results_here"
    assert report.main(missing) == 1
    out, err = capsys.readouterr()
    assert "no_results_here" in err and "Traceback" not in err
    assert report.main(tmp_path / "file.json") == 1  # a path that is not a directory
    (tmp_path / "file.json").write_text("{}")
    assert report.main(tmp_path / "file.json") == 1


def test_main_nothing_to_pair(tmp_path, capsys):
    root = tmp_path / "results"
    (root / "box").mkdir(parents=True)
    assert report.main(root, all_tables=True) == 1
    out, err = capsys.readouterr()
    assert "no results" in out and "no sparse/dense pairs" in err
    assert report.main(root, fmt="json") == 1
    assert json.loads(capsys.readouterr().out)["break_even"] == []


def test_main_unknown_format(results_dir, capsys):
    assert report.main(results_dir, fmt="html") == 2
    assert "html" in capsys.readouterr().err


def test_cli_report(results_dir, capsys):
    assert cli.main(["report", "--results", str(results_dir), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["break_even"]
    assert len(rows) == 5
    assert cli.main(["report", "--results", str(results_dir), "--machine", "box", "--all"]) == 0
    assert "0.876" in capsys.readouterr().out
    assert cli.main(["report", "--results", str(results_dir / "nope")]) == 1
    assert "nope" in capsys.readouterr().err


def test_fmt_time():
    from sparsekit.fmt import fmt_time

    assert fmt_time(None) == "n/a"
    assert fmt_time(2.5) == "2.5 s"
    assert fmt_time(0.010) == "10 ms"
    assert fmt_time(3e-6) == "3 us"
    assert fmt_time(4e-9) == "4 ns"


# -- a trimmed copy of a real asv 0.6.6 result (DenseMM and SpMMDLMC, --quick, 2-core host) ----------------

REAL_MACHINE = """{"arch": "x86_64", "cpu": "AMD EPYC", "machine": "testbox", "num_cpu": "2", "os": "Linux 6.18.44-fc-v669", "ram": "25276502016", "version": 1}"""

REAL_RESULT = """{"commit_hash": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "env_name": "existing-py_usr_bin_python3", "date": 1795254139000, "params": {"arch": "x86_64", "cpu": "AMD EPYC", "machine": "testbox", "num_cpu": "2", "os": "Linux 6.18.44-fc-v669", "ram": "25276502016", "python": "/usr/bin/python3"}, "python": "/usr/bin/python3", "requirements": {}, "env_vars": {}, "result_columns": ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"], "results": {"bench_dense_mm.DenseMM.time_dense_mm": [[0.007327894999889395, 0.001653938999879756, NaN], [["'numpy'", "'cpu'", "'opencl'"], ["'512x512x256'"]], "1", 1795254237737, 1.9807, [-Infinity, -Infinity, null], [Infinity, Infinity, null], [0.0073279, 0.0016539, null], [0.0073279, 0.0016539, null], [1, 1, null], [1, 1, null]], "bench_spmm.SpMMDLMC.time_spmm": [[0.14020448300016142, 0.08660105299986753, 0.057717998000043735, 0.028096265999920433, 0.014636622000125499, 0.005081505999896763, 0.0009905319998324558, 0.0005953949998911412, 0.0004301190001569921, 0.00018912099994849996, 0.00012957300032212515, 7.209700015664566e-05, NaN, NaN, NaN, NaN, NaN, NaN], [["'numpy'", "'cpu'", "'opencl'"], ["'transformer_attn_q'"], ["0.5", "0.7", "0.8", "0.9", "0.95", "0.98"]], "1", 1795254242105, 7.1953, [-Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, null, null, null, null, null, null], [Infinity, Infinity, Infinity, Infinity, Infinity, Infinity, Infinity, Infinity, Infinity, Infinity, Infinity, Infinity, null, null, null, null, null, null], [0.1402, 0.086601, 0.057718, 0.028096, 0.014637, 0.0050815, 0.0009905, 0.0005954, 0.0004301, 0.0001891, 0.0001296, 7.21e-05, null, null, null, null, null, null], [0.1402, 0.086601, 0.057718, 0.028096, 0.014637, 0.0050815, 0.0009905, 0.0005954, 0.0004301, 0.0001891, 0.0001296, 7.21e-05, null, null, null, null, null, null], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, null, null, null, null, null, null], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, null, null, null, null, null, null]], "bench_spmm.SpMMDLMC.track_error": [[1.3241220066124854e-07, 1.2690229736709346e-07, 1.8081228165037903e-07, 1.4186725464387745e-07, 1.1924140130815495e-07, 1.3705379593977424e-07, 4.0509944491253706e-07, 2.635654064977796e-07, 1.8975387938395186e-07, 2.0975382188962129e-07, 1.3264942203889311e-07, 1.2928299595252673e-07, NaN, NaN, NaN, NaN, NaN, NaN], [["'numpy'", "'cpu'", "'opencl'"], ["'transformer_attn_q'"], ["0.5", "0.7", "0.8", "0.9", "0.95", "0.98"]], "1", 1795254249303, 7.6434]}, "durations": {"<build>": 7.605552673339844e-05}, "version": 2}"""
