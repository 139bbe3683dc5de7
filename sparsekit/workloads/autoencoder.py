"""Sparse autoencoder on handwritten digits: what weight and activation sparsity cost in
reconstruction error, and what they buy in inference time on each backend.

Data: scikit-learn's ``load_digits`` (1797 8x8 images, shipped with the library),
scaled to [0, 1], split 80/20 by a seeded permutation. Samples are columns, as in
the kernels (features x batch).

Model (a k-sparse autoencoder, Makhzani & Frey 2013): one hidden layer of ``hidden``
units, biases folded in as a constant-1 input row so every layer is one product::

    z = W1 @ [x; 1]          encoder, W1: hidden x 65, weight part magnitude-pruned
    h = kwta_k(z)            the k largest pre-activations per sample, linear (k = hidden: none)
    y = W2 @ [h; 1]          decoder, W2: 64 x (hidden+1), weight part magnitude-pruned

Training: NumPy float32, Adam, minibatches, fixed seeds; k-WTA in the forward pass and
the gradient passed straight through to the winners. Per k, one trajectory of
iterative magnitude pruning: train dense, then prune to each level of ``SPARSITIES``
in turn (per layer, smallest |w| first, biases kept), fine-tuning after each step;
the model at each level is a checkpoint. Weights are cached as ``.npz`` (no pickle)
under ``cache_dir()``, keyed by the config and this file's source.

Inference through a backend's kernels, on the held-out batch: sparse model = ``spmm``
(encoder) + ``kwta`` + ``sparse_sparse`` (decoder; when k = hidden there is no k-WTA and
the decoder is ``spmm``); dense model (weight sparsity 0, no k-WTA) = ``dense_mm`` x 2.
Each stage runs on the previous stage's output from that backend and is checked
against the oracle; the timed figure is the stages called back to back on resident
data (the host-side append of the bias row between stages is not timed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import (
    Recipe, WorkloadResult, cache_dir, config_key, dense_mm_problem, fmt_ratio, fmt_time, kwta_problem,
    live_backends, pipeline, prepare_checked, run_status, sparse_sparse_problem, spmm_problem, time_interleaved,
    versions,
)

#: weight sparsities (fraction of zero weights in each layer, biases excluded)
SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98)
#: winners per sample; the last (= HIDDEN) means no k-WTA
K_VALUES = (8, 16, 32, 64, 256)
HIDDEN = 256


@dataclass(frozen=True)
class Config:
    hidden: int = HIDDEN
    sparsities: tuple = SPARSITIES
    k_values: tuple = K_VALUES
    seed: int = 0
    test_fraction: float = 0.2
    epochs: int = 100          # dense training
    finetune_epochs: int = 30  # after each pruning step
    batch: int = 128
    lr: float = 3e-3

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


# -- data ---------------------------------------------------------------------------------

def load_data(seed: int = 0, test_fraction: float = 0.2):
    """(x_train, x_test, y_train, y_test): images as columns (64 x n) in [0, 1], labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the autoencoder workload needs scikit-learn (pip install 'sparsekit[workloads]')") from None
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    perm = np.random.default_rng([seed, 7]).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = perm[:n_test], perm[n_test:]
    return x[train].T.copy(), x[test].T.copy(), d.target[train], d.target[test]


def with_ones(a: np.ndarray) -> np.ndarray:
    """``[a; 1]``: the constant input row that carries the biases."""
    return np.vstack([a, np.ones((1, a.shape[1]), dtype=a.dtype)])


def kwta_mask(z: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the k largest entries of each column (ties: lower index, as the oracle)."""
    if k >= z.shape[0]:
        return np.ones(z.shape, dtype=bool)
    keep = np.argsort(-z, axis=0, kind="stable")[:k]
    mask = np.zeros(z.shape, dtype=bool)
    np.put_along_axis(mask, keep, True, axis=0)
    return mask


def forward(w1, w2, x, k, dtype=np.float64):
    """(z, h, y) of the model on images ``x`` (64 x n), computed in ``dtype``."""
    w1, w2, x = (np.asarray(a, dtype=dtype) for a in (w1, w2, x))
    z = w1 @ with_ones(x)
    h = np.where(kwta_mask(z, k), z, 0) if k < z.shape[0] else z
    return z, h, w2 @ with_ones(h)


def mse(w1, w2, x, k) -> float:
    """Mean squared reconstruction error (float64 forward)."""
    return float(np.mean((forward(w1, w2, x, k)[2] - x) ** 2))


# -- training -----------------------------------------------------------------------------

class _Adam:
    def __init__(self, shapes, lr):
        self.lr, self.t = lr, 0
        self.m = [np.zeros(s, np.float32) for s in shapes]
        self.v = [np.zeros(s, np.float32) for s in shapes]

    def step(self, params, grads, b1=0.9, b2=0.999, eps=1e-8):
        self.t += 1
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + eps)


def _train_mask(z, k):
    # training only: argpartition (ties broken arbitrarily) is several times cheaper than a sort
    keep = np.argpartition(-z, k - 1, axis=0)[:k]
    mask = np.zeros(z.shape, dtype=bool)
    np.put_along_axis(mask, keep, True, axis=0)
    return mask


def _epochs(w1, w2, masks, x, k, epochs, cfg, rng, opt):
    n = x.shape[1]
    xa_all = with_ones(x)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, cfg.batch):
            idx = order[start:start + cfg.batch]
            xa, xb = xa_all[:, idx], x[:, idx]
            z = w1 @ xa
            win = _train_mask(z, k) if k < z.shape[0] else None
            h = z if win is None else np.where(win, z, 0).astype(np.float32)
            ha = with_ones(h)
            y = w2 @ ha
            dy = (2.0 / y.size) * (y - xb)
            g2 = dy @ ha.T
            dh = w2[:, :-1].T @ dy
            if win is not None:
                dh *= win  # straight through to the winners only
            g1 = dh @ xa.T
            opt.step((w1, w2), (g1, g2))
            if masks is not None:
                w1 *= masks[0]
                w2 *= masks[1]


def prune_masks(w1, w2, sparsity):
    """Per-layer magnitude masks: the smallest |w| of each weight part set to 0, bias column kept."""
    masks = []
    for w in (w1, w2):
        mask = np.ones_like(w)
        part = np.abs(w[:, :-1])
        drop = int(round(sparsity * part.size))
        if drop:
            order = np.argsort(part, axis=None, kind="stable")[:drop]
            sub = mask[:, :-1].reshape(-1)  # a copy: mask[:, :-1] is not contiguous
            sub[order] = 0
            mask[:, :-1] = sub.reshape(part.shape)
        masks.append(mask)
    return masks


def train_k(cfg: Config, k: int, x_train) -> dict:
    """One pruning trajectory for activation k: {sparsity: (w1, w2)}."""
    rng = np.random.default_rng([cfg.seed, k])
    h, d = cfg.hidden, x_train.shape[0]
    w1 = np.hstack([rng.standard_normal((h, d)) / np.sqrt(d), np.zeros((h, 1))]).astype(np.float32)
    w2 = np.hstack([rng.standard_normal((d, h)) / np.sqrt(min(k, h)), np.zeros((d, 1))]).astype(np.float32)
    out = {}
    opt = _Adam((w1.shape, w2.shape), cfg.lr)
    _epochs(w1, w2, None, x_train, k, cfg.epochs, cfg, rng, opt)
    for s in cfg.sparsities:
        masks = None
        if s > 0:
            masks = prune_masks(w1, w2, s)
            w1 *= masks[0]
            w2 *= masks[1]
            opt = _Adam((w1.shape, w2.shape), cfg.lr / 3)  # fresh moments: the pruned weights' are stale
            _epochs(w1, w2, masks, x_train, k, cfg.finetune_epochs, cfg, rng, opt)
        out[s] = (w1.copy(), w2.copy())
    return out


def cache_file(cfg: Config | None = None):
    """Where the trained weights of ``cfg`` are cached."""
    cfg = cfg or Config()
    return cache_dir() / f"autoencoder-{config_key(cfg.as_dict(), __file__)}.npz"


def trained_models(cfg: Config | None = None, *, use_cache: bool = True) -> dict:
    """{(sparsity, k): (w1, w2)} for every combination of ``cfg``; trained once, then read
    from the cache (``.npz``, no pickle)."""
    cfg = cfg or Config()
    path = cache_file(cfg)
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                return {(s, k): (f[f"w1_{s}_{k}"], f[f"w2_{s}_{k}"]) for s in cfg.sparsities for k in cfg.k_values}
        except (KeyError, ValueError, OSError):
            pass  # a truncated or foreign file: retrain and overwrite it
    x_train = load_data(cfg.seed, cfg.test_fraction)[0]
    models = {}
    with _one_blas_thread():  # tiny products: threads only add overhead (16x slower on a busy 2-core host)
        for k in cfg.k_values:
            for s, ws in train_k(cfg, k, x_train).items():
                models[(s, k)] = ws
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{np.random.default_rng().integers(1 << 30)}.tmp.npz")
        arrays = {}
        for (s, k), (w1, w2) in models.items():
            arrays[f"w1_{s}_{k}"], arrays[f"w2_{s}_{k}"] = w1, w2
        np.savez(tmp, **arrays)
        tmp.replace(path)  # atomic: concurrent benchmark processes never read half a file
    return models


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it training is just slower
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def mse_table(cfg: Config | None = None) -> dict:
    """{(sparsity, k): held-out MSE}, plus the measured weight sparsity and the dense baseline."""
    cfg = cfg or Config()
    models = trained_models(cfg)
    x_test = load_data(cfg.seed, cfg.test_fraction)[1]
    return {key: mse(w1, w2, x_test, key[1]) for key, (w1, w2) in models.items()}


# -- firing map ---------------------------------------------------------------------------

def firing_map(weight_sparsity: float = 0.9, k: int = 16, cfg: Config | None = None) -> np.ndarray:
    """10 x hidden: for each digit class, the fraction of its held-out samples in which each
    hidden unit is a k-WTA winner (the input-dependent sub-network of each digit)."""
    cfg = cfg or Config()
    if k >= cfg.hidden:
        raise ValueError(f"k={k} keeps every one of the {cfg.hidden} units: there is no winner map")
    models = trained_models(cfg)
    if (weight_sparsity, k) not in models:
        raise ValueError(f"no trained model for weight_sparsity={weight_sparsity}, k={k}: "
                         f"choose sparsity in {cfg.sparsities} and k in {cfg.k_values}")
    w1, w2 = models[(weight_sparsity, k)]
    _, x_test, _, labels = load_data(cfg.seed, cfg.test_fraction)
    win = kwta_mask(forward(w1, w2, x_test, k)[0], k)
    return np.stack([win[:, labels == c].mean(axis=1) for c in range(10)])


def firing_map_svg(weight_sparsity: float = 0.9, k: int = 16, cfg: Config | None = None, fmap=None) -> str:
    """The firing map as an SVG image (matplotlib, Agg): digits as rows, hidden units as
    columns, ordered by the digit each unit fires for most."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("firing_map_svg needs matplotlib (pip install 'sparsekit[report]')") from None
    matplotlib.use("Agg", force=False)
    import io

    import matplotlib.pyplot as plt

    f = firing_map(weight_sparsity, k, cfg) if fmap is None else np.asarray(fmap)
    order = np.lexsort((-f.max(axis=0), f.argmax(axis=0)))
    fig, ax = plt.subplots(figsize=(10, 3.2))
    try:
        im = ax.imshow(f[:, order], aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_yticks(range(10))
        ax.set_ylabel("digit")
        ax.set_xlabel(f"hidden unit (sorted by preferred digit), {f.shape[1]} units")
        ax.set_title(f"k-WTA winners per digit: weight sparsity {weight_sparsity}, k = {k}")
        fig.colorbar(im, ax=ax, label="fraction of samples firing")
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
    finally:
        plt.close(fig)
    return buf.getvalue()


# -- inference through the backends --------------------------------------------------------

def sparse_pipeline(be, w1, w2, x, k, dtype="float32"):
    """Prepare the sparse model's stages on ``be``: (plans, checks, output). Each stage
    consumes the previous stage's output as this backend computed it."""
    hidden = w1.shape[0]
    p1 = spmm_problem(w1, with_ones(x), dtype)
    plan1, c1 = prepare_checked(be, p1)
    z = plan1.result()
    plans, checks = [plan1], [("spmm", c1)]
    if k < hidden:
        plan2, c2 = prepare_checked(be, kwta_problem(z, k, dtype))
        h = plan2.result()
        plans.append(plan2)
        checks.append(("kwta", c2))
        plan3, c3 = prepare_checked(be, sparse_sparse_problem(w2, with_ones(h), dtype))
        checks.append(("sparse_sparse", c3))
    else:
        plan3, c3 = prepare_checked(be, spmm_problem(w2, with_ones(z), dtype))
        checks.append(("spmm", c3))
    plans.append(plan3)
    return plans, checks, plan3.result()


def dense_pipeline(be, w1, w2, x, dtype="float32"):
    plan1, c1 = prepare_checked(be, dense_mm_problem(w1, with_ones(x), dtype))
    plan2, c2 = prepare_checked(be, dense_mm_problem(w2, with_ones(plan1.result()), dtype))
    return [plan1, plan2], [("dense_mm", c1), ("dense_mm", c2)], plan2.result()


def _close(plans):
    for p in plans:
        p.close()


class AutoencoderRecipe(Recipe):
    name = "autoencoder"
    help = ("sparse autoencoder on sklearn digits: held-out MSE vs weight sparsity and k-WTA k, "
            "inference time of the trained models per backend against the dense model")

    def __init__(self, config: Config | None = None):
        #: training configuration; its seed is replaced by run()'s
        self.config = config or Config()

    def run(self, backends, *, seed=0, repeat=7, progress=True, quick=False) -> WorkloadResult:
        """Train (or load) every model, tabulate held-out MSE, time inference per backend.

        ``quick``: time weight sparsities 0, 0.9, 0.98 and k = 16 and none only (the MSE
        table always covers every trained model)."""
        import dataclasses

        cfg = dataclasses.replace(self.config, seed=seed)
        res = WorkloadResult(self.name)
        live, res.notes = live_backends(backends)
        models = trained_models(cfg)
        _, x_test, _, _ = load_data(cfg.seed, cfg.test_fraction)
        dense_key = (0.0, cfg.hidden)
        mses = {key: mse(*models[key], x_test, key[1]) for key in models}
        ks = list(cfg.k_values)
        res.tables.append((
            f"held-out reconstruction MSE (digits, {x_test.shape[1]} test images; dense model: "
            f"{mses[dense_key]:.3g})",
            ["weight sparsity"] + [f"k={k}" if k < cfg.hidden else f"k={k} (none)" for k in ks],
            [[s] + [_sig(mses[(s, k)]) for k in ks] for s in cfg.sparsities],
        ))
        timed_s = [s for s in cfg.sparsities if s in (0.0, 0.9, 0.98)] if quick else list(cfg.sparsities)
        timed_k = [k for k in ks if k in (16, cfg.hidden)] if quick else ks
        runs = []
        bar = _bar(len(live) * (1 + len(timed_s) * len(timed_k)), progress)
        for be in live:
            ref_w1, ref_w2 = models[dense_key]
            dense, dstatus = run_status(lambda: dense_pipeline(be, ref_w1, ref_w2, x_test))
            bar.update(1)
            if dstatus is None:
                bad = [f"{name}: {c.detail}" for name, c in dense[1] if not c.ok]
                if bad:
                    res.failed, dstatus = True, "FAIL dense model: " + "; ".join(bad)
            for s in timed_s:
                for k in timed_k:
                    w1, w2 = models[(s, k)]
                    out, status = run_status(lambda: sparse_pipeline(be, w1, w2, x_test, k))
                    bar.update(1)
                    row = {"backend": be.name, "weight_sparsity": s, "k": k, "time_s": None, "dense_time_s": None,
                           "speedup": None, "rel_error": None, "status": status or dstatus or "ok"}
                    if status is None:
                        plans, checks, y = out
                        calls = {"sparse": pipeline(plans)}
                        if dense is not None:
                            calls["dense"] = pipeline(dense[0])
                        # the dense model is timed in alternation with each sparse one: fair ratios on a busy host
                        times = time_interleaved(calls, repeat, max_time=3.0)
                        _close(plans)
                        row["time_s"], row["dense_time_s"] = t, td = times["sparse"], times.get("dense")
                        row["speedup"] = td / t if td else None
                        yref = forward(w1, w2, x_test, k)[2]
                        row["rel_error"] = float(np.max(np.abs(y - yref)) / np.max(np.abs(yref)))
                        row["mse_backend"] = float(np.mean((y.astype(np.float64) - x_test) ** 2))
                        bad = [f"{name}: {c.detail}" for name, c in checks if not c.ok]
                        if bad:
                            res.failed = True
                            row["status"] = "FAIL " + "; ".join(bad)
                    runs.append(row)
            if dense is not None:
                _close(dense[0])
        bar.close()
        rows = [[r["backend"], r["weight_sparsity"], r["k"], _sig(mses[(r["weight_sparsity"], r["k"])]),
                 fmt_time(r["time_s"]), fmt_time(r["dense_time_s"]), fmt_ratio(r["speedup"]),
                 "-" if r["rel_error"] is None else f"{r['rel_error']:.1e}", r["status"]] for r in runs]
        res.tables.append((
            f"inference of the held-out batch (n={x_test.shape[1]}): sparse = spmm + kwta + sparse_sparse, "
            "dense = dense_mm x 2; speedup = dense model time / sparse model time on the same backend",
            ["backend", "weight sparsity", "k", "MSE", "sparse model", "dense model", "speedup", "rel. error",
             "status"], rows))
        fk = min((k for k in ks if k < cfg.hidden), key=lambda k: abs(k - 16), default=None)
        fs = 0.9 if 0.9 in cfg.sparsities else cfg.sparsities[-1]
        fmap = firing_map(fs, fk, cfg) if fk is not None else None
        res.data = {
            "config": cfg.as_dict(), "seed": seed, "versions": versions(), "n_test": int(x_test.shape[1]),
            "mse": [{"weight_sparsity": s, "k": k, "mse": v} for (s, k), v in mses.items()],
            "dense_mse": mses[dense_key], "inference": runs,
            "firing_map": None if fmap is None else {"weight_sparsity": fs, "k": fk, "map": fmap.round(4).tolist()},
        }
        return res


def _sig(v: float) -> float:
    return float(f"{v:.3g}")


def _bar(total, enabled):
    from ..sweep import _progress

    return _progress(total, enabled, "autoencoder")
