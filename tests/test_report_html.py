"""The HTML report (``sparsekit.report_html``, ``report_data``, ``plots``) and the asv offline rewrite.

Fixtures: the committed results of this repository's machine copied into
``tmp_path``, plus a synthetic second machine (a GPU host) built from the same
file with its times halved, a calibration file and workload figures -- so the
multi-machine overview, roofline and "not measured" paths are all exercised.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from sparsekit import report, report_data, report_html, results as asv_results
from sparsekit.roofline import roofline_fraction

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
PINNED_RUN = "3e222099-virtualenv-py3.11.json"
REWRITE = REPO / "tools" / "asv_offline" / "rewrite.py"


def _newest(machine_dir: Path) -> Path:
    return asv_results.result_files(machine_dir)[-1][1]


#: the synthetic gpu-host's calibration: per-level read bandwidths and the machine's peak
CALIBRATION = {
    "machine": "gpu-host",
    "backends": {"numpy": {"copy_gbps": 20.0, "triad_gbps": 18.0, "gemm_gflops": 100.0}},
    "limits": {"gemm_gflops": 100.0, "levels": [
        {"name": "L2", "capacity": 2 * 2**20, "read_gbps": 60.0},
        {"name": "LLC", "capacity": 32 * 2**20, "read_gbps": 40.0},
        {"name": "DRAM", "capacity": None, "read_gbps": 18.0}]},
}


def make_results(tmp_path: Path, second=True) -> Path:
    """results/ with the committed machine, and (second) a synthetic 'gpu-host' twice as fast."""
    root = tmp_path / "results"
    root.mkdir()
    shutil.copy(RESULTS / "benchmarks.json", root / "benchmarks.json")
    # a pinned run of the reference machine from before calibration and workloads existed,
    # so the "not measured" paths are exercised whatever newer runs are committed
    src = RESULTS / "amd-epyc-2c"
    (root / src.name).mkdir()
    for name in ("machine.json", PINNED_RUN):
        shutil.copy(src / name, root / src.name / name)
    src = root / src.name
    if second:
        data = json.loads(_newest(src).read_text())
        data["params"]["machine"] = "gpu-host"
        for row in data["results"].values():
            if isinstance(row[0], list):
                row[0] = [v / 2 if isinstance(v, float) and v == v else v for v in row[0]]
        gdir = root / "gpu-host"
        gdir.mkdir()
        machine = json.loads((src / "machine.json").read_text())
        machine.update(machine="gpu-host", cpu="Test GPU host")
        (gdir / "machine.json").write_text(json.dumps(machine))
        (gdir / _newest(src).name).write_text(json.dumps(data))
        (gdir / "calibration.json").write_text(json.dumps(CALIBRATION))
        (gdir / "versions.txt").write_text("# python 3.11.7\nnumpy==2.4.6\nscipy==1.17.1\n")
    return root


@pytest.fixture
def results(tmp_path):
    return make_results(tmp_path)


def test_collect_two_machines(results):
    summaries = report_data.collect(results)
    assert [s["machine"] for s in summaries] == sorted([s["machine"] for s in summaries])
    by = {s["machine"]: s for s in summaries}
    assert "gpu-host" in by and len(by) == 2
    base = next(m for m in by if m != "gpu-host")
    # the same pairs on both machines, and identical break-even (all times halved: same speedups)
    assert len(by[base]["rows"]) == len(by["gpu-host"]["rows"]) > 0
    for a, b in zip(by[base]["rows"], by["gpu-host"]["rows"]):
        assert a["break_even"] == b["break_even"]
        assert a["dense_time"] is None or b["dense_time"] == pytest.approx(a["dense_time"] / 2)
    assert by["gpu-host"]["versions"] == [("numpy", "2.4.6"), ("scipy", "1.17.1")]
    assert by[base]["calibration"] == {} and by[base]["roofline"] == []
    acc = {(a["benchmark"], a["backend"]) for a in by[base]["accuracy"]}
    assert ("bench_spmm.SpMM", "numpy") in acc and all(a["max_error"] < 1e-3 for a in by[base]["accuracy"])


def test_roofline_fractions_by_hand(results):
    """The machine's limits hold every backend's points; each is held against the level its footprint fits in."""
    s = next(s for s in report_data.collect(results) if s["machine"] == "gpu-host")
    roof = {(r["backend"], r["kernel"], r["variant"], r["shape"]): r for r in s["roofline"]}
    assert {r["backend"] for r in s["roofline"]} >= {"numpy", "cpu"}  # machine limits: every backend's points
    row = next(r for r in s["rows"] if r["backend"] == "numpy" and r["kernel"] == "spmm" and r["variant"] == "uniform"
               and r["shape"] == "2048x2048x64")
    r = roof[("numpy", "spmm", "uniform", "2048x2048x64")]
    m = k = 2048
    n = 64
    flops, nbytes = 2.0 * m * k * n, 4.0 * (m * k + k * n + m * n)
    assert 2 * 2**20 < nbytes <= 32 * 2**20  # fits the last-level cache: held against its 40 GB/s
    assert r["dense_fraction"] == pytest.approx(max(flops / 100e9, nbytes / 40e9) / row["dense_time"])
    s0, t0 = row["sparsities"][0], row["times"][0]
    nnz = (1 - s0) * m * k
    f, b = 2 * nnz * n, nnz * 8 + (m + 1) * 4 + 4 * (k * n + m * n)
    assert r["fractions"][0] == pytest.approx(max(f / 100e9, b / 40e9) / t0) and r["levels"][0] == "LLC"
    high = r["sparsities"].index(0.99)
    assert r["levels"][high] == "L2"  # 1% of W plus X and Y: under 2 MiB
    ss = roof[("numpy", "sparse_sparse", "act_sparsity=0.9", "2048x2048x64")]  # its model knows the activations
    assert ss["dense_fraction"] is not None and any(f is not None for f in ss["fractions"])


def test_nominal_model_and_fraction():
    from sparsekit.kernels import get_kernel

    assert get_kernel("dense_mm").nominal_model(dict(m=2, k=3, n=4)) == (48.0, 4.0 * (6 + 12 + 8))
    assert get_kernel("dense_mm").nominal_model(dict(m=2, k=3, n=4, dtype="float64")) == (48.0, 8.0 * (6 + 12 + 8))
    e, m, k, n, top = 8, 2, 3, 4, 2
    flops, nbytes = get_kernel("moe").nominal_model(dict(m=m, k=k, n=n, experts=e, top_k=top))
    assert flops == 2.0 * (top * m * k * n + e * k * n) and nbytes == 4.0 * (k * n + e * k + e * m * k + m * n)
    # memory bound: 1 flop/byte at 10 GB/s -> 10 GFLOP/s attainable; achieved 5 -> 50 %
    assert roofline_fraction(1e9, 1e9, 0.2, 1000.0, 10.0) == pytest.approx(0.5)
    assert roofline_fraction(1e9, 1e9, 0.2, None, None) is None


def test_calibration_from_asv_tracks(tmp_path):
    data = {"result_columns": ["result", "params"], "results": {
        "bench_calibrate.Calibrate.track_triad_gbps": [[12.5, float("nan")], [["'numpy'", "'cpu'"]]],
        "bench_calibrate.Calibrate.track_gemm_gflops": [[50.0, 80.0], [["'numpy'", "'cpu'"]]]}}
    bm = {"bench_calibrate.Calibrate.track_triad_gbps": {"param_names": ["backend"]},
          "bench_calibrate.Calibrate.track_gemm_gflops": {"param_names": ["backend"]}}
    cal = report_data.calibration(tmp_path, data, bm)
    assert cal == {"numpy": {"read_gbps": None, "copy_gbps": None, "triad_gbps": 12.5, "gemm_gflops": 50.0},
                   "cpu": {"read_gbps": None, "copy_gbps": None, "triad_gbps": None, "gemm_gflops": 80.0}}
    (tmp_path / "calibration.json").write_text(json.dumps({"backends": {"cpu": {"triad_gbps": 9}}}))
    assert report_data.calibration(tmp_path, data, bm) == {
        "cpu": {"read_gbps": None, "copy_gbps": None, "triad_gbps": 9.0, "gemm_gflops": None}}


def test_workload_figures_shown(tmp_path, results):
    mdir = results / "gpu-host"
    path = _newest(mdir)
    data = json.loads(path.read_text())
    data["results"]["bench_workloads.Autoencoder.track_mse"] = [[0.011, 0.02, 0.013, 0.031],
                                                                [["0.5", "0.9"], ["8", "16"]]]
    path.write_text(json.dumps(data))
    bm = json.loads((results / "benchmarks.json").read_text())
    bm["bench_workloads.Autoencoder.track_mse"] = {"param_names": ["weight_sparsity", "k"], "unit": "MSE"}
    (results / "benchmarks.json").write_text(json.dumps(bm))
    page = report_html.render(report_data.collect(results), plots_enabled=False)
    sec = page[page.index('id="machine-gpu-host"'):]
    assert "bench_workloads.Autoencoder.track_mse" in sec and "0.031" in sec and "<th>weight_sparsity</th>" in sec
    other = page[:page.index('id="machine-gpu-host"')]
    assert "Autoencoder MSE: not measured" in other


def test_html_page_contents(results, tmp_path):
    summaries = report_data.collect(results)
    out = report_html.write(summaries, tmp_path / "html" / "report")
    page = out.read_text()
    assert out.name == "index.html"
    # self-contained: nothing fetched from anywhere
    assert not re.search(r'<(script|link|img)\b[^>]*\b(src|href)="https?://', page)
    assert "<script" not in page
    # overview across machines and one section per machine
    assert 'id="overview"' in page and page.count('<section class="machine"') == 2
    groups = {(r["kernel"], r["variant"], r["shape"]) for s in summaries for r in s["rows"] if s["machine"] == "gpu-host"}
    # one plot per kernel, variant and shape per machine, and the roofline of the calibrated machine
    assert page.count("<svg") == 2 * len(groups) + 1
    assert page.index('id="headline"') < page.index('id="verdicts"') < page.index('id="roofline"') < page.index('<section class="machine"')
    assert '<table class="headline">' in page and '<table class="verdicts">' in page
    assert 'id="roofline-gpu-host"' in page and "no calibration, no roofline" in page
    assert page.count('<table class="break-even">') == 2
    assert "not measured (run <code>sparsekit calibrate</code>)" in page or "Calibration: not measured" in page
    assert "GEMM GFLOP/s" in page and "fraction of roofline by sparsity" in page
    assert 'id="asv-link" href="../index.html"' in page and "not published yet" in page
    (tmp_path / "html" / "index.html").write_text("<html></html>")  # an asv site beside it now
    again = report_html.write(summaries, tmp_path / "html" / "report", plots_enabled=False).read_text()
    assert "not published yet" not in again


def test_without_matplotlib_the_report_says_so(results, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    ok, reason = report_html.plots.available()
    assert not ok and "matplotlib" in reason
    page = report_html.write(report_data.collect(results), tmp_path / "r").read_text()
    assert "<svg" not in page and "Plots left out: matplotlib is not installed" in page
    assert '<table class="break-even">' in page


def test_main_writes_html_beside_results(results, capsys):
    assert report.main(results, plots=False) == 0  # plots: test_html_page_contents
    out = capsys.readouterr().out
    path = results.parent / "html" / "report" / "index.html"
    assert path.is_file() and out.rstrip().splitlines()[-1].startswith(f"HTML report: {path}")
    assert "== where sparse beats dense" in out and "gpu-host" in out
    assert report.main(results, plots=False, all_tables=True) == 0
    out = capsys.readouterr().out
    assert "-- error against the float64 oracle" in out and "-- calibration" in out
    assert out.index("-- calibration") < out.index("== where sparse beats dense")  # the answer comes last
    assert report.main(results, machine="gpu-host", fmt="json", html_dir=results.parent / "other", plots=False) == 0
    rows = json.loads(capsys.readouterr().out)["break_even"]
    assert {r["machine"] for r in rows} == {"gpu-host"}
    page = (results.parent / "other" / "index.html").read_text()
    assert "<svg" not in page and "plots disabled" in page and page.count('<section class="machine"') == 1


def test_main_html_none_writes_nothing(tmp_path, capsys):
    root = make_results(tmp_path, second=False)
    assert report.main(root, html_dir=None) == 0
    assert not (tmp_path / "html").exists()
    assert "HTML report" not in capsys.readouterr().out


def test_main_unwritable_html_dir(results, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert report.main(results, fmt="json", html_dir=blocker / "report") == 1
    assert "cannot write the HTML report" in capsys.readouterr().err


# -- tools/asv_offline/rewrite.py -----------------------------------------------------------------


@pytest.fixture(scope="module")
def rewrite_mod():
    spec = importlib.util.spec_from_file_location("asv_offline_rewrite", REWRITE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fake_node_modules(root: Path, mod) -> Path:
    """Every file the rewrite copies, with made-up contents (so no hash matches)."""
    for package, inner, _ in mod.ASSETS.values():
        p = root / package / inner
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"/* {package} {inner} */")
    (root / "bootstrap" / "dist" / "fonts").mkdir(parents=True, exist_ok=True)
    (root / "bootstrap" / "dist" / "fonts" / "x.woff").write_text("font")
    return root


def asv_page() -> str:
    import asv

    return (Path(asv.__file__).parent / "www" / "index.html").read_text()


def test_rewrite_every_cdn_address_and_idempotent(tmp_path, rewrite_mod):
    nm = fake_node_modules(tmp_path / "nm", rewrite_mod)
    site = tmp_path / "html"
    site.mkdir()
    text = re.sub(r'\s+integrity="[^"]*"', "", asv_page())  # fake files cannot match the real hashes
    (site / "index.html").write_text(text)
    assert rewrite_mod.rewrite(site, nm) == [site / "index.html"]
    page = (site / "index.html").read_text()
    srcs = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', page)
    assert not [s for s in srcs if s.startswith("http")]
    for s in srcs:
        if s.startswith("vendor/"):
            assert (site / s).is_file()
    assert (site / "vendor/bootstrap/dist/fonts/x.woff").is_file()
    assert page.count('href="report/index.html"') == 1 and "crossorigin" not in page
    assert rewrite_mod.rewrite(site, nm) == []  # a second run changes nothing
    assert (site / "index.html").read_text() == page


def test_rewrite_checks_integrity_and_unknown_urls(tmp_path, rewrite_mod):
    nm = fake_node_modules(tmp_path / "nm", rewrite_mod)
    site = tmp_path / "html"
    site.mkdir()
    (site / "index.html").write_text(asv_page())  # real hashes, fake files: jquery must fail
    with pytest.raises(rewrite_mod.RewriteError, match="integrity"):
        rewrite_mod.rewrite(site, nm)
    (site / "index.html").write_text('<script src="https://cdn.example.org/new.js"></script>')
    with pytest.raises(rewrite_mod.RewriteError, match="cdn.example.org"):
        rewrite_mod.rewrite(site, nm)
    assert rewrite_mod.main([str(tmp_path / "nothing")]) == 1


def test_sri():
    import base64
    import hashlib

    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("rw", REWRITE)
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    digest = base64.b64encode(hashlib.sha384(b"abc").digest()).decode()
    assert mod.sri_ok(b"abc", f"sha256-nope sha384-{digest}")
    assert not mod.sri_ok(b"abd", f"sha384-{digest}")


def test_pinned_packages_match_the_rewrite_map(rewrite_mod):
    pkg = json.loads((REWRITE.parent / "package.json").read_text())["dependencies"]
    lock = json.loads((REWRITE.parent / "package-lock.json").read_text())
    assert {p for p, _, _ in rewrite_mod.ASSETS.values()} == set(pkg)
    for name, version in pkg.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} must be pinned exactly"
        entry = lock["packages"][f"node_modules/{name}"]
        assert entry["version"] == version and entry["integrity"].startswith("sha512-")
