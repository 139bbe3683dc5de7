"""``TorchBackend``: each kernel written the way a PyTorch user writes it today.

* ``dense_mm``: ``torch.mm`` (MKL on the CPU, cuBLAS on CUDA).
* ``spmm``: ``torch.sparse_csr_tensor`` / ``torch.sparse_bsr_tensor`` @ dense
  (MKL sparse BLAS on the CPU, cuSPARSE on CUDA); ``torch.mv`` when X has one
  column. BSR needs square blocks (MKL and cuSPARSE take one block dimension). N:M is Unsupported: torch's
  semi-structured sparsity (``to_sparse_semi_structured``) is CUDA-only, 2:4 only,
  half/int8 only -- not the catalogue's general N:M in float32/float64.
* ``sddmm``: ``torch.sparse.sampled_addmm(mask, A, B, beta=0)`` on the CSR mask.
* ``gather_mm``: ``torch.index_select`` of the rows, then ``torch.mm``.
* ``kwta``: ``torch.topk`` along each column (held transposed), scattered into zeros.
* ``sparse_sparse``: ``torch.sparse.mm`` of the CSR weights and the CSR activations
  (a sparse result), densified: the product of the two sparsities torch offers.

Everything that is not the kernel happens in ``prepare``: conversion to torch
tensors (always copies, so a plan can never write into the problem's arrays),
upload to the device, output allocation, and the sparse-format invariant checks.
On CUDA the timed call ends with ``torch.cuda.synchronize()``.

Threads: see the package docstring (``torch.set_num_threads``, applied when the
backend is created; torch's pool is process-wide).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

import sparsekit
from sparsekit import Plan
from sparsekit.host import cpu_description, thread_policy
from sparsekit.dtypes import host_dtype

from . import DTYPES, KERNELS, requested_device

_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}

#: a UserWarning torch prints once per process about CSR/BSR being "beta"; noise in every run
_BETA_WARNING = r"Sparse (CSR|BSR|CSC|BSC) tensor support is in beta"


def thread_count() -> int:
    """Intra-op threads: SPARSEKIT_NUM_THREADS, else OMP_NUM_THREADS, else every usable core."""
    return thread_policy()


def select_device() -> torch.device:
    """SPARSEKIT_TORCH_DEVICE, else cuda when torch finds a GPU, else cpu (see the package doc)."""
    spec = requested_device()
    if not spec:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"SPARSEKIT_TORCH_DEVICE={spec!r} but torch {torch.__version__} finds no CUDA device"
                               f" (CUDA build: {torch.version.cuda or 'none, a CPU-only wheel'})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"SPARSEKIT_TORCH_DEVICE={spec!r} but torch sees {torch.cuda.device_count()} CUDA device(s)")
    return dev


class TorchBackend(sparsekit.Backend):
    name = "torch"
    supports = KERNELS
    dtypes = DTYPES

    def __init__(self):
        self.dev = select_device()
        self.cuda = self.dev.type == "cuda"
        torch.set_num_threads(thread_count())
        try:
            # one inter-op thread: sparsekit never runs independent torch ops side by side
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # already fixed by earlier torch work in this process

    # -- description --------------------------------------------------------------
    def device(self) -> str:
        if self.cuda:
            return f"{torch.cuda.get_device_name(self.dev)} ({self.dev}, CUDA {torch.version.cuda})"
        return f"{cpu_description()} (torch CPU, {torch.get_num_threads()} threads)"

    def versions(self) -> dict:
        out = {"torch": torch.__version__}
        if self.cuda:
            out["cuda"] = torch.version.cuda
        return out

    def threads(self) -> int:
        """CPU: torch's intra-op threads; CUDA: the device's streaming multiprocessors."""
        if self.cuda:
            return torch.cuda.get_device_properties(self.dev).multi_processor_count
        return torch.get_num_threads()

    def prepare(self, problem):
        if isinstance(problem, sparsekit.Problem) and problem.kernel == "spmm" and problem.params.get("format") == "nm":
            raise sparsekit.Unsupported(
                "torch has no general N:M format: its semi-structured sparsity is CUDA-only, 2:4 only, "
                "in half/int8 (use format='csr' for torch.sparse on the same weights)")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_BETA_WARNING, category=UserWarning)
            return super().prepare(problem)

    # -- helpers ------------------------------------------------------------------
    def _tensor(self, a, dtype: str) -> torch.Tensor:
        """A device copy of ``a`` in the problem's dtype (never a view of the problem's array)."""
        return torch.tensor(np.ascontiguousarray(a, dtype=host_dtype(dtype)), device=self.dev)

    def _index(self, a) -> torch.Tensor:
        return torch.tensor(np.ascontiguousarray(a, dtype=np.int64), device=self.dev)

    def _empty(self, shape, dtype: str) -> torch.Tensor:
        return torch.empty(tuple(shape), dtype=_TORCH_DTYPES[dtype], device=self.dev)

    def _csr(self, w, dtype: str) -> torch.Tensor:
        w = w.tocsr()
        if not w.has_canonical_format:  # user CSR: duplicates summed, as SciPy does
            w = w.copy()
            w.sum_duplicates()
        return torch.sparse_csr_tensor(self._index(w.indptr), self._index(w.indices), self._tensor(w.data, dtype),
                                       size=w.shape, check_invariants=True)

    def _plan(self, op, fetch=None) -> Plan:
        """A Plan whose call runs ``op`` and, on CUDA, waits for the device."""
        if self.cuda:
            dev = self.dev

            def run():
                out = op()
                torch.cuda.synchronize(dev)
                return out
        else:
            run = op
        return Plan(run, fetch or _to_host)

    # -- kernels ------------------------------------------------------------------
    def _prepare_dense_mm(self, p):
        w, x = self._tensor(p.inputs["w"], p.dtype), self._tensor(p.inputs["x"], p.dtype)
        y = self._empty((w.shape[0], x.shape[1]), p.dtype)
        return self._plan(lambda: torch.mm(w, x, out=y))

    def _prepare_spmm(self, p):
        x = self._tensor(p.inputs["x"], p.dtype)
        if p.params["format"] == "bsr":
            bh, bw = p.params["blocksize"]
            if bh != bw:
                # MKL's (CPU) and cuSPARSE's BSR products take one block dimension
                raise sparsekit.Unsupported(f"torch's BSR @ dense needs square blocks, not {bh}x{bw} "
                                            f"(\"MKL Sparse doesn't support matrices with non-square blocks\")")
            b = p.inputs["w"].tobsr(blocksize=tuple(p.params["blocksize"]))
            b.sort_indices()
            w = torch.sparse_bsr_tensor(self._index(b.indptr), self._index(b.indices), self._tensor(b.data, p.dtype),
                                        size=b.shape, check_invariants=True)
        else:
            w = self._csr(p.inputs["w"], p.dtype)
        y = self._empty((w.shape[0], x.shape[1]), p.dtype)
        if x.shape[1] == 1:
            # one column: torch.mv takes the sparse matrix-vector path (MKL/cuSPARSE SpMV),
            # about 3x faster than torch.mm on a k x 1 matrix -- what a torch user with a vector writes
            xv, yv = x.view(-1), y.view(-1)
            return self._plan(lambda: (torch.mv(w, xv, out=yv), y)[1])
        return self._plan(lambda: torch.mm(w, x, out=y))

    def _prepare_sparse_sparse(self, p):
        w = self._csr(p.inputs["w"], p.dtype)
        xs = self._csr(p.inputs["x_csc"].tocsr(), p.dtype)
        # sparse @ sparse gives a sparse result; the kernel's result is the dense Y
        return self._plan(lambda: torch.sparse.mm(w, xs).to_dense())

    def _prepare_sddmm(self, p):
        a, b = self._tensor(p.inputs["a"], p.dtype), self._tensor(p.inputs["b"], p.dtype)
        mask = self._csr(p.inputs["mask"], p.dtype)
        # out = beta * mask + alpha * (A @ B) at the mask's nonzeros; beta=0 keeps only the product
        return self._plan(lambda: torch.sparse.sampled_addmm(mask, a, b, beta=0.0, alpha=1.0),
                          fetch=lambda out: _to_host(out.values()))

    def _prepare_gather_mm(self, p):
        w, x = self._tensor(p.inputs["w"], p.dtype), self._tensor(p.inputs["x"], p.dtype)
        rows = self._index(p.inputs["rows"])
        g = self._empty((len(rows), w.shape[1]), p.dtype)
        y = self._empty((len(rows), x.shape[1]), p.dtype)

        def run():
            torch.index_select(w, 0, rows, out=g)
            return torch.mm(g, x, out=y)

        return self._plan(run)

    def _prepare_kwta(self, p):
        x = self._tensor(p.inputs["x"], p.dtype)
        k, m = p.params["k"], x.shape[0]
        y = torch.zeros_like(x)
        if k == 0:
            return self._plan(lambda: y.zero_())
        if k == m:
            return self._plan(lambda: y.copy_(x))

        # Columns made contiguous (x transposed, in prepare): topk along the last,
        # contiguous dimension is ~1.5x faster than torch.topk(x, k, dim=0) on the CPU.
        xt, yt = x.T.contiguous(), y.T.contiguous()

        def run():
            values, index = torch.topk(xt, k, dim=1, sorted=False)
            yt.zero_()
            return yt.scatter_(1, index, values)

        return self._plan(run, fetch=lambda out: _to_host(out.T))

    # -- calibration hook (sparsekit.calibrate) -------------------------------------
    def stream(self, kind: str, n_bytes: int, passes: int = 1):
        """STREAM copy (a = b) or triad (a = b + 3 c) on float64 device tensors of ``n_bytes`` each
        (one pass per call; ``read``: None, not measured through torch).

        torch's elementwise kernels run on its own thread pool (or the GPU), so
        this measures what torch itself can stream, not the host default.
        """
        if kind == "read":
            return None
        if kind not in ("copy", "triad"):
            raise ValueError(f"unknown STREAM kernel {kind!r}: choose 'copy' or 'triad'")
        n = int(n_bytes) // 8
        a = torch.zeros(n, dtype=torch.float64, device=self.dev)  # zeros: pages touched here, not timed
        b = torch.full((n,), 1.0, dtype=torch.float64, device=self.dev)
        if kind == "copy":
            return self._plan(lambda: a.copy_(b), fetch=lambda out: None)
        c = torch.full((n,), 2.0, dtype=torch.float64, device=self.dev)
        return self._plan(lambda: torch.add(b, c, alpha=3.0, out=a), fetch=lambda out: None)


def _to_host(t) -> np.ndarray:
    return t.detach().cpu().numpy()
