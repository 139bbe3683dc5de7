"""A real browser renders the asv site and the HTML report, offline.

Headless Chromium (Debian's ``chromium``; ``SPARSEKIT_CHROMIUM`` names another
binary) loads both from a loopback HTTP server with every other host unresolvable,
so a page that still needed a CDN would fall over (asv's page sends itself to
error.html when a script fails). The site is built as ``make html`` builds it:
``asv publish`` of this repository's committed results plus a synthetic second
machine, then ``tools/asv_offline/rewrite.py``, then ``sparsekit report``. The
test asserts on the rendered DOM (``--dump-dom``) and that screenshots are not
blank. Skipped, with the reason, without Chromium, asv, npm's packages or Pillow.
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sparsekit import report

REPO = Path(__file__).resolve().parents[1]
OFFLINE = REPO / "tools" / "asv_offline"
CHROMIUM = os.environ.get("SPARSEKIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium)")


def _node_modules() -> Path:
    nm = OFFLINE / "node_modules"
    if not (nm / ".package-lock.json").is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm not found: cannot install the asv site's pinned JavaScript (tools/asv_offline)")
        proc = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                              cwd=OFFLINE, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            pytest.skip(f"npm ci failed in {OFFLINE} (no registry access?): {proc.stderr.strip()[-300:]}")
    return nm


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(served html dir, base URL, machine names): asv site + report of two machines."""
    pytest.importorskip("asv")
    tmp = tmp_path_factory.mktemp("browser")
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from test_report_html import make_results
    finally:
        sys.path.pop(0)
    results = make_results(tmp)
    html = tmp / "html"
    conf = (REPO / "asv.conf.json").read_text()
    for key, value in (("repo", REPO), ("results_dir", results), ("html_dir", html), ("benchmark_dir", REPO / "benchmarks")):
        conf, n = re.subn(rf'"{key}"\s*:\s*"[^"]*"', lambda m: f'"{key}": {json.dumps(str(value))}', conf)
        assert n == 1, f"asv.conf.json: no single {key!r} entry to point at the test's folders"
    (tmp / "asv.conf.json").write_text(conf)
    proc = subprocess.run([sys.executable, "-m", "asv", "publish", "--config", str(tmp / "asv.conf.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spec = importlib.util.spec_from_file_location("asv_offline_rewrite", OFFLINE / "rewrite.py")
    rw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rw)
    rw.rewrite(html, _node_modules())
    assert report.main(results, fmt="json", html_dir=html / "report") == 0

    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    machines = sorted(p.name for p in results.iterdir() if p.is_dir())
    yield html, f"http://127.0.0.1:{server.server_address[1]}", machines
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def chromium(tmp_path, url: str, *, screenshot: Path | None = None, size="1280,900") -> str:
    """The DOM after the page settled (and a screenshot when asked), every non-loopback host unresolvable."""
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--virtual-time-budget=10000", f"--window-size={size}"]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    proc = subprocess.run(args + [url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def assert_not_blank(png: Path) -> None:
    Image = pytest.importorskip("PIL.Image")
    import numpy as np

    assert png.is_file() and png.stat().st_size > 5000
    px = np.asarray(Image.open(png).convert("RGB"), dtype=float)
    assert px.std() > 10, f"{png} is (nearly) one colour"
    assert len(np.unique(px.reshape(-1, 3)[::7], axis=0)) > 20, f"{png} has too few colours to hold plots"


def test_report_renders(site, tmp_path):
    html, base, machines = site
    dom = chromium(tmp_path, f"{base}/report/index.html")
    assert "<h1>sparsekit report</h1>" in dom
    for m in machines:
        assert f'id="machine-{m}"' in dom
    assert dom.count('<table class="break-even">') == len(machines) and 'id="overview"' in dom
    assert dom.count("<svg") >= 2 * len(machines) and "time per call (s)" in dom  # plot text is text
    assert 'id="asv-link" href="../index.html"' in dom and "not published yet" not in dom
    png = tmp_path / "report.png"
    chromium(tmp_path, f"{base}/report/index.html", screenshot=png, size="1280,2000")
    assert_not_blank(png)


def test_asv_site_renders_offline(site, tmp_path):
    html, base, machines = site
    dom = chromium(tmp_path, f"{base}/index.html")
    assert 'id="summarygrid-display"' in dom  # still asv's page: a failed script would have sent it to error.html
    assert dom.count('class="btn benchmark-container"') >= 10  # the grid of every benchmark
    assert 'class="flot-base"' in dom  # flot drew its thumbnails into canvases
    assert 'href="report/index.html"' in dom  # the link to the report
    graph = f"{base}/index.html#bench_spmm.SpMM.time_spmm"
    dom = chromium(tmp_path, graph)
    assert 'class="flot-base"' in dom and "bench_spmm.SpMM.time_spmm" in dom
    for m in machines:  # both machines in the machine selector
        assert f">{m}<" in dom
    png = tmp_path / "asv.png"
    chromium(tmp_path, graph, screenshot=png)
    assert_not_blank(png)
