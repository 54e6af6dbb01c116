"""deepunfold: sparse coding, proximal solvers and learned unfolded networks.

The library behind the Snakemake pipeline of this repository. It knows nothing about
Snakemake: every function takes explicit arrays and parameters and returns results.
"""

from .prox import group_soft_threshold, hard_threshold, soft_threshold, svt
from .solvers import LassoResult, fista, ista, lasso_objective, lipschitz_constant, power_iteration

__version__ = "0.1.0"

__all__ = [
    "soft_threshold",
    "hard_threshold",
    "svt",
    "group_soft_threshold",
    "LassoResult",
    "ista",
    "fista",
    "lasso_objective",
    "lipschitz_constant",
    "power_iteration",
]
