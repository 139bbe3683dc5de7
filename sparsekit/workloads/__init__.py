"""Workloads: kernel timings weighed against accuracy, as a researcher would run them first.

``RECIPES`` maps a name to a ``Recipe`` whose ``run(backends, seed=, repeat=, progress=,
quick=)`` returns a ``WorkloadResult`` (tables for the terminal, JSON-able data, notes,
failed). ``sparsekit run <name>`` runs them; ``benchmarks/bench_workloads.py`` tracks them
with asv.

* ``autoencoder``: sparse autoencoder on sklearn's digits -- MSE vs weight and activation
  sparsity, inference time of the trained models per backend (``autoencoder`` module).
* ``selector``: 1000 of 20000 rows selected per call vs dense 1000- and 20000-wide layers.
* ``dlmc``: spmm on real DLMC masks beside uniform masks of the same shape and sparsity.
* ``experts``: mixture of experts, top-k of E experts vs all experts dense.

Importing this package imports NumPy/SciPy only; scikit-learn and matplotlib are
imported when the autoencoder needs them.
"""
from __future__ import annotations

from ._common import Recipe, WorkloadResult, cache_dir
from .autoencoder import AutoencoderRecipe
from .dlmc import DLMCRecipe
from .experts import ExpertsRecipe
from .selector import SelectorRecipe

RECIPES: dict[str, Recipe] = {r.name: r for r in (AutoencoderRecipe(), SelectorRecipe(), DLMCRecipe(), ExpertsRecipe())}

__all__ = ["RECIPES", "Recipe", "WorkloadResult", "cache_dir"]
