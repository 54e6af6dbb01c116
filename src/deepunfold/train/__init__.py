"""One training loop with early stopping and best-weights restore, used by every model."""
