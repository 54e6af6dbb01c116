"""Learned unfolded networks: LISTA family, unfolded RPCA, the ML-ISTA network."""
