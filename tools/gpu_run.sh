#!/usr/bin/env bash
# The GPU verification of the cupy backend, on a host with an NVIDIA GPU (what CI cannot do):
#
#   tools/gpu_run.sh                 # uses .venv (make venv first); OUT_DIR=gpu-run by default
#   CUPY_WHEEL=/path/cupy.whl tools/gpu_run.sh   # a carried wheel instead of PyPI (offline hosts)
#
# 1. installs CuPy into the venv if it is missing (CUPY_SPEC, default the pyproject's cupy extra);
# 2. `sparsekit backends`: cupy must be listed available, else the script stops with the reason;
# 3. the conformance suite and tests/test_cupy.py on the cupy backend (pytest --backend cupy);
# 4. the asv suite in this environment, one fresh *spawned* process per benchmark (nothing is
#    forked after CUDA starts), results in results/<machine>/ for this commit (commit that folder);
# 5. tools/gpu_bandwidth.py: D2D copy bandwidth and the gather kernel's fraction of it;
# 6. sparsekit report: the break-even table (cuSPARSE and our kernels vs cuBLAS per shape).
# Logs of every step go to $OUT_DIR. Exit status: the first failing step's.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT_DIR=${OUT_DIR:-gpu-run}
CUPY_SPEC=${CUPY_SPEC:-cupy-cuda12x>=13}
mkdir -p "$OUT_DIR"
rc=0
step() { echo "== $*" >&2; }
keep() { local s=$?; [ $rc -eq 0 ] && [ $s -ne 0 ] && rc=$s; return 0; }

command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT_DIR/nvidia-smi.txt"
if ! "$PY" -c "import cupy" 2>/dev/null; then
  step "installing ${CUPY_WHEEL:-$CUPY_SPEC}"
  "$PY" -m pip install -q "${CUPY_WHEEL:-$CUPY_SPEC}" || exit 1
fi
export SPARSEKIT_TEST_BACKEND=cupy
step "sparsekit backends"
"$PY" -m sparsekit backends | tee "$OUT_DIR/backends.txt"
"$PY" - <<'PY' || exit 1
import sys, sparsekit
rec = {r.name: r for r in sparsekit.backends()}["cupy"]
sys.exit(0 if rec.available else f"cupy backend unavailable: {rec.reason}")
PY

step "conformance (pytest --backend cupy)"
"$PY" -m pytest -q -p no:cacheprovider --backend cupy tests/test_conformance.py tests/test_cupy.py \
  --junitxml "$OUT_DIR/pytest-cupy.xml" 2>&1 | tee "$OUT_DIR/pytest-cupy.txt"; keep

step "asv suite (spawn)"
MACHINE=${MACHINE:-$("$PY" -c 'import sys; sys.path.insert(0, "sparsekit"); import _sysinfo; print(_sysinfo.machine_name())')}
"$PY" -m asv machine --yes --machine "$MACHINE" > /dev/null
"$PY" -m asv run --python=same --machine "$MACHINE" --launch-method=spawn \
  --set-commit-hash "$(git rev-parse HEAD)" 2>&1 | tee "$OUT_DIR/asv.txt"; keep
"$PY" sparsekit/versions.py > "results/$MACHINE/versions.txt" 2>/dev/null || true

step "gather bandwidth vs device-to-device copy"
"$PY" tools/gpu_bandwidth.py --json "$OUT_DIR/bandwidth.json" 2>&1 | tee "$OUT_DIR/bandwidth.txt"; keep

step "break-even report"
"$PY" -m sparsekit report --machine "$MACHINE" 2>&1 | tee "$OUT_DIR/report.txt"; keep
step "done (rc=$rc): commit results/$MACHINE/; logs in $OUT_DIR/"
exit $rc
