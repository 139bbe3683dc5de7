"""Stand-in for CuPy's compute-type switch: CuPy's rule, float32 is TF32 when ``CUPY_TF32`` > 0
(CuPy reads it once per process; the stand-in at every call, so tests can change it)."""
import os

import numpy as np

COMPUTE_TYPE_DEFAULT = 1
COMPUTE_TYPE_TF32 = 7


def get_compute_type(dtype):
    if np.dtype(dtype).char in "fF" and int(os.getenv("CUPY_TF32", "0")) > 0:
        return COMPUTE_TYPE_TF32
    return COMPUTE_TYPE_DEFAULT
