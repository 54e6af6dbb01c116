"""deepunfold: sparse coding, proximal solvers and learned unfolded networks.

The library behind the Snakemake pipeline of this repository. It knows nothing about
Snakemake: every function takes explicit arrays and parameters and returns results.

The top-level names below are imported lazily, so that light modules (``deepunfold.config``,
used when the workflow is parsed) load without importing PyTorch: a dry run stays fast.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "soft_threshold": "prox",
    "hard_threshold": "prox",
    "svt": "prox",
    "group_soft_threshold": "prox",
    "LassoResult": "solvers",
    "ista": "solvers",
    "fista": "solvers",
    "lasso_objective": "solvers",
    "lipschitz_constant": "solvers",
    "power_iteration": "solvers",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
