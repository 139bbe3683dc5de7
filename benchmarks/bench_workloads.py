"""Workloads: kernel timings weighed against accuracy (``sparsekit.workloads``).

* ``Autoencoder.track_mse`` (weight_sparsity, k): held-out reconstruction MSE of the
  sparse autoencoder on sklearn's digits. Trained once (``setup_cache``; the weights are
  also cached on disk, see ``sparsekit.workloads.cache_dir``), never inside timed code.
  k = 256 (the hidden width) means no k-WTA.
* ``AutoencoderInference.time_inference`` (backend, weight_sparsity, k): the trained
  sparse model on the 359 held-out images through the backend's kernels
  (spmm + kwta + sparse_sparse); ``track_error``: max|Y - Yref|/max|Yref| of its output
  against the float64 NumPy forward. ``AutoencoderDense.time_inference`` (backend): the
  dense model (dense_mm x 2), the speedup's numerator.
* ``Selector.time_layer`` (backend, n, layer): ``layer`` is ``selected`` (1000 of 20000
  rows, gather_mm), ``dense_1000`` (dense_mm 1000x1000) or ``full_20000`` (dense_mm
  20000x1000), input width 1000.
* ``DLMCvsUniform.time_spmm`` (backend, matrix, sparsity, mask): spmm (csr) on a real
  DLMC mask (``mask="dlmc"``) or a uniform mask of the same shape and nnz
  (``"uniform"``) at the N of the original benchmark; ``track_error`` likewise.
* ``Experts.time_moe`` (backend, experts, top_k): top-k of E 256x256 experts on 64
  tokens, only the chosen ones computed; ``track_error``. ``ExpertsDense.time_dense_all``
  (backend, experts): every expert on every token, the (E*256) x 256 x 64 dense_mm.
"""
from .common import BACKENDS, DTYPE, SEED, TimingProtocol, grid, prepare, require_backend, shared

# the autoencoder's grid is its training grid (sparsekit.workloads.autoencoder)
AE_SPARSITIES = [0.0, 0.5, 0.8, 0.9, 0.95, 0.98]
AE_K = [8, 16, 32, 64, 256]
AE_TIMED_SPARSITIES = grid([0.9], AE_SPARSITIES)
AE_TIMED_K = grid([16, 256], AE_K)

SELECTOR_BATCHES = [1, 64]
SELECTOR_LAYERS = ["selected", "dense_1000", "full_20000"]

#: vendored short names, then (full grid) the rest of the shared DLMC subset, found
#: through SPARSEKIT_DLMC_DIR (n/a where it is not set)
DLMC_NAMES = grid(
    ["transformer_attn_q", "rn50_conv3x3"],
    ["transformer_attn_q", "rn50_conv3x3", "transformer/body_encoder_layer_0_ffn_conv1",
     "transformer/body_encoder_layer_0_ffn_conv2", "rn50/bottleneck_1_block_group4_1_1", "rn50/final_dense"],
)
DLMC_SPARSITIES = grid([0.9], [0.5, 0.7, 0.8, 0.9, 0.95, 0.98])
MASKS = ["dlmc", "uniform"]

EXPERTS = grid([8, 64], [8, 16, 32, 64])
TOP_K = [1, 2]


class _Timed(TimingProtocol):
    timeout = 120


def _models():
    from sparsekit.workloads import autoencoder

    return autoencoder.trained_models()


def _models_file() -> str:
    from sparsekit.workloads import autoencoder

    _models()
    return str(autoencoder.cache_file())


class Autoencoder:
    """Held-out MSE of the trained models (no backend: the float64 NumPy forward)."""

    param_names = ["weight_sparsity", "k"]
    params = [AE_SPARSITIES, AE_K]
    timeout = 300
    version = "1"

    def setup_cache(self):
        from sparsekit.workloads import autoencoder

        return {f"{s}_{k}": v for (s, k), v in autoencoder.mse_table().items()}

    setup_cache.timeout = 600

    def track_mse(self, mses, weight_sparsity, k):
        return mses[f"{weight_sparsity}_{k}"]

    track_mse.unit = "mean squared error"


def _require_plans_at_once(be, backend: str, plans: int = 2):
    """asv n/a for a backend that cannot keep a model's stages prepared at once (Lava)."""
    limit = getattr(be, "max_live_plans", None)
    if limit is not None and limit < plans:
        raise NotImplementedError(f"{backend}: keeps {limit} prepared plan(s) live per process; "
                                  f"the model's inference holds {plans} at once")


class _Pipeline(_Timed):
    """A model's stages as prepared plans (``self.plans``), run back to back."""

    def teardown(self, *params):
        for p in getattr(self, "plans", ()):
            p.close()

    def time_inference(self, *params):
        for p in self.plans:
            p()


class AutoencoderInference(_Pipeline):
    param_names = ["backend", "weight_sparsity", "k"]
    params = [BACKENDS, AE_TIMED_SPARSITIES, AE_TIMED_K]

    def setup_cache(self):
        # train (or read the cache) once, before any timed process; asv passes the
        # return value to setup only when it is not None
        return _models_file()

    setup_cache.timeout = 600  # training from scratch on a busy 2-core host

    def setup(self, _, backend, weight_sparsity, k):
        from sparsekit.workloads import autoencoder as ae

        kernels = ["spmm", "kwta", "sparse_sparse"] if k < ae.HIDDEN else ["spmm"]
        be = [require_backend(backend, kern, "csr" if kern == "spmm" else None, DTYPE) for kern in kernels][0]
        _require_plans_at_once(be, backend)
        self.w1, self.w2 = _models()[(weight_sparsity, k)]
        self.x = ae.load_data()[1]
        self.k = k
        try:
            self.plans, self.checks, self.y = ae.sparse_pipeline(be, self.w1, self.w2, self.x, k, DTYPE)
        except __import__("sparsekit").Unsupported as e:
            raise NotImplementedError(f"{backend}: {e.reason}") from None


    def track_error(self, *params):
        import numpy as np

        from sparsekit.workloads import autoencoder as ae

        yref = ae.forward(self.w1, self.w2, self.x, self.k)[2]
        return float(np.max(np.abs(self.y - yref)) / np.max(np.abs(yref)))

    track_error.unit = "relative error"


class AutoencoderDense(_Pipeline):
    param_names = ["backend"]
    params = [BACKENDS]

    def setup_cache(self):
        return _models_file()

    setup_cache.timeout = 600

    def setup(self, _, backend):
        import sparsekit
        from sparsekit.workloads import autoencoder as ae

        be = require_backend(backend, "dense_mm")
        _require_plans_at_once(be, backend)
        w1, w2 = _models()[(0.0, ae.HIDDEN)]
        try:
            self.plans = ae.dense_pipeline(be, w1, w2, ae.load_data()[1], DTYPE)[0]
        except sparsekit.Unsupported as e:
            raise NotImplementedError(f"{backend}: {e.reason}") from None



class Selector(_Timed):
    param_names = ["backend", "n", "layer"]
    params = [BACKENDS, SELECTOR_BATCHES, SELECTOR_LAYERS]

    def setup(self, backend, n, layer):
        from sparsekit.workloads import selector

        be = require_backend(backend, "gather_mm" if layer == "selected" else "dense_mm")
        self.plan = prepare(be, shared(selector.layer_problem, layer, n, dtype=DTYPE, seed=SEED))

    def teardown(self, *params):
        if getattr(self, "plan", None) is not None:
            self.plan.close()

    def time_layer(self, backend, n, layer):
        self.plan()


class _Checked(_Timed):
    def teardown(self, *params):
        if getattr(self, "plan", None) is not None:
            self.plan.close()

    def track_error(self, *params):
        import sys

        import sparsekit

        check = sparsekit.check(self.problem, self.plan.result())
        if not check.ok:
            print(f"{self.problem.describe()}: result fails the oracle check: {check.detail}", file=sys.stderr)
        return check.error

    track_error.unit = "relative error"


class DLMCvsUniform(_Checked):
    param_names = ["backend", "matrix", "sparsity", "mask"]
    params = [BACKENDS, DLMC_NAMES, DLMC_SPARSITIES, MASKS]

    def setup(self, backend, matrix, sparsity, mask):
        from sparsekit.workloads import dlmc

        be = require_backend(backend, "spmm", "csr")
        template = matrix if matrix in dlmc.io.DLMC_MATRICES else dlmc.template_of(matrix)
        try:
            real = shared(dlmc.dlmc_problem, template, sparsity, dtype=DTYPE, seed=SEED)
        except FileNotFoundError as e:
            raise NotImplementedError(str(e)) from None
        self.problem = real if mask == "dlmc" else shared(dlmc.uniform_twin, real, dtype=DTYPE, seed=SEED)
        self.plan = prepare(be, self.problem)

    def time_spmm(self, *params):
        self.plan()


class Experts(_Checked):
    param_names = ["backend", "experts", "top_k"]
    params = [BACKENDS, EXPERTS, TOP_K]

    def setup(self, backend, experts, top_k):
        from sparsekit.workloads import experts as ex

        be = require_backend(backend, "moe")
        self.problem = shared(ex.moe_problem, experts, top_k, dtype=DTYPE, seed=SEED)
        self.plan = prepare(be, self.problem)

    def time_moe(self, *params):
        self.plan()


class ExpertsDense(_Timed):
    param_names = ["backend", "experts"]
    params = [BACKENDS, EXPERTS]

    def setup(self, backend, experts):
        from sparsekit.workloads import experts as ex

        be = require_backend(backend, "dense_mm")
        self.plan = prepare(be, ex.dense_all_problem(experts, dtype=DTYPE, seed=SEED))

    def teardown(self, *params):
        if getattr(self, "plan", None) is not None:
            self.plan.close()

    def time_dense_all(self, *params):
        self.plan()
