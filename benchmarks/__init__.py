"""sparsekit's asv benchmark suite: one module per kernel family, the backend a parameter.

Thread counts are pinned here, before any module of the suite imports NumPy, so
that BLAS, OpenMP, Numba and PoCL all use every core of the host (each timed call runs
one library at a time, so they never compete). A value already in the
environment wins, so ``OPENBLAS_NUM_THREADS=1 asv run ...`` measures one thread.
"""
import os

try:
    #: threads used by every CPU backend unless the environment says otherwise
    THREADS = str(len(os.sched_getaffinity(0)))
except AttributeError:  # not Linux
    THREADS = str(os.cpu_count() or 1)

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "POCL_MAX_PTHREAD_COUNT"):
    os.environ.setdefault(_var, THREADS)
del _var
