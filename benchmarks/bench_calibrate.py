"""Calibrate: each backend's machine limits, tracked like any benchmark figure.

``track_copy_gbps`` / ``track_triad_gbps``: STREAM copy and triad bandwidth;
``track_gemm_gflops``: the float32 dense GEMM peak through the backend's own
``dense_mm`` (see ``sparsekit.calibrate`` for the protocol). The report reads
them under these names (``bench_calibrate.Calibrate.track_*``) to turn times
into roofline fractions; ``sparsekit calibrate`` writes the same figures to
``results/<machine>/calibration.json``.

``setup_cache`` calibrates every backend once per asv run (one process, the
backends one after another, so no two thread pools compute at once); the three
``track_`` methods only read that. An unavailable backend is n/a, with its reason.
"""
from .common import BACKENDS

try:  # n/a from inside a benchmark body (plain NotImplementedError there is a failure)
    from asv_runner.benchmarks.mark import SkipNotImplemented
except ImportError:  # pragma: no cover - older asv
    SkipNotImplemented = NotImplementedError


class Calibrate:
    param_names = ["backend"]
    params = [BACKENDS]
    timeout = 900  # setup_cache: every backend's STREAM and GEMM sizing, one after another
    version = "1"

    def setup_cache(self):
        from sparsekit import calibrate, registry

        known = set(registry.backend_names())
        return calibrate.calibrate([b for b in BACKENDS if b in known], quick=False, progress=False)

    def setup(self, calib, backend):
        entry = calib["backends"].get(backend)
        if entry is None:
            why = [n for n in calib["notes"] if n.startswith(f"{backend}:")]
            raise NotImplementedError("; ".join(why) or f"backend {backend!r} is not installed")
        self.entry = entry

    def _figure(self, key):
        value = self.entry.get(key)
        if value is None:
            raise SkipNotImplemented(f"{key} was not measured (see the calibration notes)")
        return value

    def track_copy_gbps(self, calib, backend):
        return self._figure("copy_gbps")

    track_copy_gbps.unit = "GB/s"

    def track_triad_gbps(self, calib, backend):
        return self._figure("triad_gbps")

    track_triad_gbps.unit = "GB/s"

    def track_gemm_gflops(self, calib, backend):
        return self._figure("gemm_gflops")

    track_gemm_gflops.unit = "GFLOP/s"
