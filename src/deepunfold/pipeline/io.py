"""File helpers for the workflow's scripts: atomic writes and deterministic tables.

They live in :mod:`deepunfold.io`, the library's bottom layer, which every module that
writes imports; this module re-exports them under the pipeline's name for the scripts.
"""

from deepunfold.io import atomic_path, read_table, write_table

__all__ = ["atomic_path", "write_table", "read_table"]
