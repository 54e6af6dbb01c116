"""Operators every algorithm shares: proximal maps, metrics."""
