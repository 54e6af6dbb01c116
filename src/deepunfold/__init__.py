"""deepunfold: sparse coding, proximal solvers and learned unfolded networks.

The library behind the Snakemake pipeline of this repository. It knows nothing about
Snakemake: every function takes explicit arrays and parameters and returns results.

The top-level names below are imported lazily, so that light modules
(``deepunfold.pipeline.config``, used when the workflow is parsed) load without importing PyTorch:
a dry run stays fast.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "soft_threshold": "ops.prox",
    "hard_threshold": "ops.prox",
    "svt": "ops.prox",
    "group_soft_threshold": "ops.prox",
    "LassoResult": "solvers.proximal_gradient",
    "ista": "solvers.proximal_gradient",
    "fista": "solvers.proximal_gradient",
    "lasso_objective": "solvers.proximal_gradient",
    "lipschitz_constant": "solvers.proximal_gradient",
    "power_iteration": "solvers.proximal_gradient",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
