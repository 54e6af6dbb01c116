"""Shared fixtures: in-process torch on one thread, and one demo run reused by many tests.
Helpers that are not fixtures (copy_workflow, snakemake, job_counts, ...) are in helpers.py."""

import pytest
from helpers import DEMO, copy_workflow, snakemake


@pytest.fixture(scope="module")
def one_thread():
    """Run a test module's in-process torch work on one thread, then restore the count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The demo DAG built once from an empty results/ (the end-to-end run of the suite)."""
    wd = copy_workflow(tmp_path_factory.mktemp("demo"))
    proc = snakemake(wd, *DEMO, "results/figures/all")
    return wd, proc
