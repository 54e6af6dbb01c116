"""Data generators (sparse signals, moving digits) and dataset readers."""
