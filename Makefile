# The README's commands. Everything runs in a local virtualenv, .venv, that
# `make` creates or refreshes whenever pyproject.toml or this file changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sparsekit-installed
# Optional backends that can run on this machine, plus what the workloads, the
# HTML report, the tests and asv need. CuPy only where nvidia-smi exists, as the
# wheel for the driver's CUDA major version ("CUDA Version: 13.0" in its banner):
# the `cupy` extra (cupy-cuda13x) for CUDA 13 and later, `cupy-cuda12` for 12.
CUDA_MAJOR := $(shell nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
CUPY_EXTRA := $(shell m="$(CUDA_MAJOR)"; if [ -z "$$m" ]; then :; elif [ "$$m" -ge 13 ]; then echo cupy; elif [ "$$m" -eq 12 ]; then echo cupy-cuda12; fi)
EXTRAS ?= cpu,opencl,torch,lava,workloads,report,test,bench$(if $(CUPY_EXTRA),$(comma)$(CUPY_EXTRA),)
comma := ,
# lava-nc 0.10.0 declares Python <3.11 and numpy<2 but is pure Python and runs on
# both (see backends/sparsekit_lava/_compat.py); its real dependencies are the
# `lava` extra, so it is installed without its declared ones.
LAVA_NC ?= lava-nc==0.10.0

# Thread pools pinned deliberately so results are comparable between runs:
# every library may use all cores, but they never run at the same time
# (one kernel per timed call), so they do not fight.
NPROC  := $(shell nproc 2>/dev/null || echo 1)
export OPENBLAS_NUM_THREADS ?= $(NPROC)
export OMP_NUM_THREADS ?= $(NPROC)
export MKL_NUM_THREADS ?= $(NPROC)
export NUMBA_NUM_THREADS ?= $(NPROC)
export POCL_MAX_PTHREAD_COUNT ?= $(NPROC)

.PHONY: test bench quick compare history html report venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile examples/sparsekit-scipy/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install -q --no-deps --ignore-requires-python "$(LAVA_NC)"
	$(BIN)/python -m pip install -q -e examples/sparsekit-scipy
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# results/<machine>: microarchitecture and core count (sparsekit.host.machine_name, archspec), read
# with the virtualenv's Python once it exists (this variable is expanded in recipes only)
MACHINE ?= $(shell $(BIN)/python -m sparsekit.host)

# asv.conf.json says spawn (never fork after a device runtime started); on a host
# without a GPU, forkserver gives the same isolation at half the start-up cost.
ASV_LAUNCH ?= $(if $(shell command -v nvidia-smi 2>/dev/null),spawn,forkserver)

# Machine limits (STREAM bandwidth, GEMM peak) per backend, for the roofline
# fractions: results/<machine>/calibration.json. Unavailable backends are noted.
CALIBRATE_BACKENDS ?= numpy,cpu,opencl,torch$(if $(shell command -v nvidia-smi 2>/dev/null),$(comma)cupy,)

# The site and the summary are written even when a benchmark errored; the
# target still fails then, with asv's exit status. After measuring, this run is compared
# with the machine's previous commit and flagged changes are re-measured side by side
# (sparsekit compare --confirm); the report shows them under "changed since".
bench: $(STAMP)
	@$(BIN)/python -m sparsekit.host --asv-machine --machine $(MACHINE) >/dev/null
	$(BIN)/asv run --machine $(MACHINE) --launch-method=$(ASV_LAUNCH) --record-samples HEAD^!; rc=$$?; \
	py=$$(ls -t .asv/env/*/bin/python 2>/dev/null | head -n 1); \
	$${py:-$(BIN)/python} sparsekit/versions.py > results/$(MACHINE)/versions.txt; \
	$(BIN)/sparsekit calibrate --backend $(CALIBRATE_BACKENDS) --machine $(MACHINE) --no-progress || rc=$$?; \
	$(BIN)/sparsekit compare --machine $(MACHINE) --confirm --launch-method=$(ASV_LAUNCH) > /dev/null || true; \
	$(MAKE) --no-print-directory html report && exit $$rc

# The regression gate of a change, as SciPy and NumPy check pull requests: BASE and HEAD
# measured side by side in one session (asv, rounds interleaved across the two commits; every
# kernel's default grid and the Peers view, or BENCH=regex), flagged changes re-measured once
# more, exit 1 on a confirmed slowdown beyond the factor (1.3), an accuracy loss or a new failure.
BASE ?= $(shell git merge-base HEAD main 2>/dev/null || git rev-parse HEAD~1)
compare: $(STAMP)
	@$(BIN)/python -m sparsekit.host --asv-machine --machine $(MACHINE) >/dev/null
	$(BIN)/sparsekit compare --run $(BASE) --gate --machine $(MACHINE) --launch-method=$(ASV_LAUNCH) \
	  $(if $(BENCH),--bench '$(BENCH)',)

# History: the kernels' default grids and the Peers view on the last N commits where the suite
# runs (commits already measured are skipped; a commit that cannot build is reported and skipped),
# into results/<machine>/, so the asv site draws lines; then the site and the report.
N ?= 3
HISTORY_BENCH ?= ^bench_(dense_mm|spmm|sddmm|gather_mm|kwta|sparse_sparse|lif|moe|peers)\.
history: $(STAMP)
	@$(BIN)/python -m sparsekit.host --asv-machine --machine $(MACHINE) >/dev/null
	$(BIN)/asv run --machine $(MACHINE) --launch-method=$(ASV_LAUNCH) --record-samples --skip-existing-commits \
	  -b '$(HISTORY_BENCH)' HEAD~$(N)..HEAD; rc=$$?; \
	$(MAKE) --no-print-directory html report && exit $$rc

# The asv site of every machine in results/, made to render offline: the
# JavaScript it loads from CDNs comes from the npm registry at pinned versions
# (tools/asv_offline/package-lock.json) and is copied into html/vendor/. asv
# publish empties html/, so the report (html/report/) is written again after it.
ASV_OFFLINE := tools/asv_offline
html: $(STAMP)
	$(BIN)/asv publish
	@if command -v npm >/dev/null 2>&1; then \
	  test $(ASV_OFFLINE)/node_modules/.package-lock.json -nt $(ASV_OFFLINE)/package-lock.json || \
	    (cd $(ASV_OFFLINE) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || exit 1; \
	  $(BIN)/python $(ASV_OFFLINE)/rewrite.py html || exit 1; \
	else echo "asv site: npm not found, so html/index.html loads its JavaScript from CDNs (install Node.js for an offline site)"; fi
	@$(BIN)/sparsekit report --json > /dev/null || true
	@echo "asv site: html/index.html"

# The headline for this machine in minutes, without asv: .quick/results/, html/quick/index.html.
quick: $(STAMP)
	$(BIN)/sparsekit quick

# Every machine's results: terminal tables, and html/report/index.html (path printed last).
report: $(STAMP)
	$(BIN)/sparsekit report

clean:
	rm -rf html .asv .quick build *.egg-info
