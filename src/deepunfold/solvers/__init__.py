"""Classical iterative algorithms: ISTA/FISTA, the exact Lasso, PCP, multi-layer pursuits."""
