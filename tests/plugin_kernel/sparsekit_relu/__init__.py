"""A kernel and a backend defined outside sparsekit, as a research group's package would.

``relu_spmm``: Y = relu(W @ X), W sparse -- a fused sparse layer with its activation.
Everything sparsekit needs to know about it is on its ``KernelSpec``; the ``relu``
backend implements it (SciPy) and ``dense_mm`` (NumPy), so a break-even can be
measured. Registered through entry points only (``tests/test_plugin_kernel.py`` writes
the ``*.dist-info`` that declares them), never imported by sparsekit by name.
"""
from __future__ import annotations

import numpy as np

from sparsekit.kernels import BenchGrid, Case
from sparsekit.kernels.weights import WEIGHT_DEFAULTS, dense_operand, sparse_weights
from sparsekit.kernels.base import SparseWeightsProduct, dim, shape_str


class ReluSpMM(SparseWeightsProduct):
    """Inputs: ``w`` (m x k CSR), ``x`` (k x n). Result: ``max(W @ X, 0)`` (m x n).

    relu is 1-Lipschitz, so the product's rounding bound holds for it unchanged.
    """

    name = "relu_spmm"
    summary = "Y = relu(W @ X), W sparse"
    defaults = {"m": None, "k": None, "n": None, **WEIGHT_DEFAULTS}
    benchmarks = (BenchGrid("ReluSpMM", ("shape", "sparsity"), default=([shape_str((96, 80, 8))], [0.5, 0.9, 0.99])),)

    def generate(self, rng, params):
        w = sparse_weights(rng, params)
        x = dense_operand(rng, (params["k"], dim("n", params["n"])), params["dtype"])
        return params, {"w": w, "x": x}

    def reference(self, problem, absolute=False):
        y = super().reference(problem, absolute)
        return y if absolute else np.maximum(y, 0.0)

    def compulsory_bytes(self, problem):
        w, x = problem.inputs["w"], problem.inputs["x"]
        return w.nnz * (x.itemsize + 4) + (w.shape[0] + 1) * 4 + (x.size + w.shape[0] * x.shape[1]) * x.itemsize

    def conformance_cases(self):
        return [Case(self.name, "uniform-0.9", dict(m=24, k=20, n=6, sparsity=0.9), representative=True),
                Case(self.name, "uniform-0.0", dict(m=9, k=7, n=3, sparsity=0.0))]

    def small_params(self, fmt=None):
        return dict(m=8, k=8, n=4, sparsity=0.5)

    def draw_kwargs(self, draw, sks, max_side):
        side = sks.sides(1, max_side)
        return dict(draw(sks.weight_kwargs(draw(side), draw(side), max_side)), n=draw(side))


def info():
    return {"name": "relu", "device": "host CPU (SciPy, test plug-in)", "kernels": {"relu_spmm": ("dense",),
            "dense_mm": ("dense",)}, "dtypes": ("float32", "float64"), "requires": ("scipy",),
            "load": "sparsekit_relu:ReluBackend"}


def _backend_class():
    import sparsekit

    class ReluBackend(sparsekit.Backend):
        name = "relu"
        supports = {"relu_spmm": ("dense",), "dense_mm": ("dense",)}

        def device(self):
            return "host CPU (SciPy, test plug-in)"

        def _prepare_relu_spmm(self, p):
            w, x = p.inputs["w"].copy(), p.inputs["x"].copy()
            return sparsekit.Plan(lambda: np.maximum(np.asarray(w @ x), 0).astype(x.dtype, copy=False))

        def _prepare_dense_mm(self, p):
            w, x = p.inputs["w"].copy(), p.inputs["x"].copy()
            return sparsekit.Plan(lambda: w @ x)

    return ReluBackend


def __getattr__(name):  # the backend class is built on first use: info() stays import-light
    if name == "ReluBackend":
        cls = _backend_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


ENTRY_POINTS = """[sparsekit.kernels]
relu_spmm = sparsekit_relu:ReluSpMM

[sparsekit.backends]
relu = sparsekit_relu:info
"""
