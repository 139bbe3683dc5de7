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

.PHONY: test bench html report venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install -q --no-deps --ignore-requires-python "$(LAVA_NC)"
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

MACHINE ?= $(shell $(PYTHON) -c 'import sys; sys.path.insert(0, "sparsekit"); import _sysinfo; print(_sysinfo.machine_name())')

# asv.conf.json says spawn (never fork after a device runtime started); on a host
# without a GPU, forkserver gives the same isolation at half the start-up cost.
ASV_LAUNCH ?= $(if $(shell command -v nvidia-smi 2>/dev/null),spawn,forkserver)

# Machine limits (STREAM bandwidth, GEMM peak) per backend, for the roofline
# fractions: results/<machine>/calibration.json. Unavailable backends are noted.
CALIBRATE_BACKENDS ?= numpy,cpu,opencl,torch$(if $(shell command -v nvidia-smi 2>/dev/null),$(comma)cupy,)

# The site and the summary are written even when a benchmark errored; the
# target still fails then, with asv's exit status.
bench: $(STAMP)
	@test -f ~/.asv-machine.json && grep -q '"$(MACHINE)"' ~/.asv-machine.json || $(BIN)/asv machine --yes --machine $(MACHINE)
	$(BIN)/asv run --machine $(MACHINE) --launch-method=$(ASV_LAUNCH) HEAD^!; rc=$$?; \
	py=$$(ls -t .asv/env/*/bin/python 2>/dev/null | head -n 1); \
	$${py:-$(BIN)/python} sparsekit/versions.py > results/$(MACHINE)/versions.txt; \
	$(BIN)/sparsekit calibrate --backend $(CALIBRATE_BACKENDS) --machine $(MACHINE) --no-progress || rc=$$?; \
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

# Every machine's results: terminal tables, and html/report/index.html (path printed last).
report: $(STAMP)
	$(BIN)/sparsekit report

clean:
	rm -rf html .asv build *.egg-info
