"""CpuStrategy: which strategy the ``cpu`` backend's inspector picks, stored as a number.

asv keeps numbers, so ``track_strategy`` records the strategy's place in
``sparsekit_cpu.strategies.NAMES`` (an append-only registry: a number means the
same strategy in every result) for the problems of the kernel benchmarks whose
strategy is chosen by inspection (CSR SpMM, DLMC masks, GATHER_MM). A change of
choice between commits or machines then shows in the asv site like any figure.
Without wisdom the model's choice is recorded (tuning is off in benchmarks).
"""
from .common import SEED, prepare, require_backend

#: label -> (kernel, make_problem keywords); labels are fixed so results line up
PROBLEMS = {
    **{f"spmm 2048x2048x{n} uniform {s}": ("spmm", dict(m=2048, k=2048, n=n, sparsity=s, pattern="uniform"))
       for n in (1, 64) for s in (0.5, 0.9, 0.99)},
    **{f"spmm 4096x4096x{n} uniform {s}": ("spmm", dict(m=4096, k=4096, n=n, sparsity=s, pattern="uniform"))
       for n in (1, 128) for s in (0.5, 0.9)},
    "spmm 16384x16384x1 uniform 0.9": ("spmm", dict(m=16384, k=16384, n=1, sparsity=0.9, pattern="uniform")),
    "spmm 4096x4096x64 powerlaw 0.9": ("spmm", dict(m=4096, k=4096, n=64, sparsity=0.9, pattern="powerlaw")),
    **{f"spmm dlmc {name} 0.9": ("spmm", dict(matrix=name, sparsity=0.9, n=n))
       for name, n in (("transformer_attn_q", 256), ("rn50_conv3x3", 196))},
    **{f"gather_mm 20000x1000x{n} rows 1000": ("gather_mm", dict(m=20000, k=1000, n=n, rows=1000)) for n in (1, 64)},
}


class CpuStrategy:
    param_names = ["problem"]
    params = [list(PROBLEMS)]
    timeout = 180

    def setup(self, problem):
        import sparsekit

        kernel, kw = PROBLEMS[problem]
        fmt = "csr" if kernel == "spmm" else None
        be = require_backend("cpu", kernel, fmt)
        kw = dict(kw, format=fmt) if fmt else kw
        self.plan = prepare(be, sparsekit.make_problem(kernel, dtype="float32", seed=SEED, **kw))

    def teardown(self, *params):
        if getattr(self, "plan", None) is not None:
            self.plan.close()

    def track_strategy(self, problem):
        st = self.plan.strategy
        if st is None or st.code is None:
            raise NotImplementedError("the cpu backend did not record a strategy")
        return st.code

    track_strategy.unit = "strategy number (sparsekit_cpu.strategies.NAMES)"
