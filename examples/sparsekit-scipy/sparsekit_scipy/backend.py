"""The SciPy backend: each kernel as a SciPy user writes it.

* ``dense_mm``: BLAS ``gemm`` through ``scipy.linalg.blas`` (SciPy's own BLAS).
* ``spmm``: ``csr_matrix @ X`` for csr and N:M (SciPy has no N:M format), ``bsr_matrix @ X``
  with the problem's block size for bsr.
* ``sparse_sparse``: ``csr_matrix @ csc_matrix`` (sparse x sparse), densified.

Conversion to SciPy's formats happens in ``prepare`` (never timed); ``plan()`` runs the
product alone. Kernels SciPy has no operation for (sddmm, gather, k-WTA, LIF, MoE) are not
claimed, so sparsekit reports them as n/a with that reason.
"""
from __future__ import annotations

import numpy as np
import scipy
import scipy.linalg.blas as blas
import scipy.sparse as sp

from sparsekit import Backend, Plan
from sparsekit.host import cpu_description

from . import DTYPES, KERNELS


class ScipyBackend(Backend):
    name = "scipy"
    supports = KERNELS
    dtypes = DTYPES

    def device(self) -> str:
        return f"{cpu_description()} (SciPy sparse)"

    def versions(self) -> dict:
        return {"scipy": scipy.__version__, "numpy": np.__version__}

    def _prepare_dense_mm(self, p):
        w, x = (np.asfortranarray(p.inputs[k]) for k in ("w", "x"))
        gemm = blas.get_blas_funcs("gemm", (w, x))
        out = np.zeros((w.shape[0], x.shape[1]), dtype=w.dtype, order="F")
        if 0 in out.shape or w.shape[1] == 0:
            return Plan(lambda: out)
        # overwrite_c into a buffer allocated here: the call allocates nothing
        return Plan(lambda: gemm(1.0, w, x, beta=0.0, c=out, overwrite_c=True))

    def _prepare_spmm(self, p):
        w, x = p.inputs["w"], np.ascontiguousarray(p.inputs["x"])
        if p.params["format"] == "bsr":
            w = sp.bsr_matrix(w, blocksize=tuple(p.params["blocksize"]))
        else:
            w = sp.csr_matrix(w, copy=True)
        return Plan(lambda: w @ x)

    def _prepare_sparse_sparse(self, p):
        w, xc = sp.csr_matrix(p.inputs["w"], copy=True), sp.csc_matrix(p.inputs["x_csc"], copy=True)
        return Plan(lambda: w @ xc, fetch=lambda y: y.toarray())
