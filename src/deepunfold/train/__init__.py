"""What every trainer shares: the one training loop with early stopping and best-weights restore
(``loop``: ``fit``, ``BatchSampler``, ``FitResult``, ``accuracy``) and the one checkpoint format
(``checkpoint``: ``save_model``, ``load_model``, ``Configurable``)."""
