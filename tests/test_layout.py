"""The library's layout: every module imports, the import graph has no cycles, and the layers
depend on each other in one direction only (docs/architecture.md).

The graph is read statically (``deepunfold.pipeline.provenance.direct_imports``, the analysis
that gives the rules their code inputs), lazy imports inside functions included, so a cycle is
found even where Python's import order would happen to hide it.
"""

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import deepunfold
from deepunfold.pipeline.provenance import direct_imports, module_file

ROOT = Path(deepunfold.__file__).resolve().parent
MODULES = ["deepunfold"] + sorted(
    m.name for m in pkgutil.walk_packages(deepunfold.__path__, "deepunfold.")
)
# what a library module outside pipeline/ may use of it: atomic writes and the
# missing-file message; config keys, paths, manifests and job set-up stay in pipeline/
PIPELINE_FOR_THE_LIBRARY = {"deepunfold.pipeline", "deepunfold.pipeline.io",
                            "deepunfold.pipeline.resources"}  # fmt: skip
# the modules the workflow imports while it parses the Snakefile: a dry run must stay fast
PARSE_TIME = ["deepunfold.pipeline.config", "deepunfold.pipeline.provenance",
              "deepunfold.pipeline.resources"]  # fmt: skip


def graph() -> dict[str, set[str]]:
    return {
        m: {d for d in direct_imports(module_file(m), root=ROOT) if d != m and d in MODULES}
        for m in MODULES
    }


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(u, path):
        state[u] = 1
        path.append(u)
        for v in sorted(g[u]):
            if state.get(v) == 1:
                return path[path.index(v) :] + [v]
            if v not in state and (found := visit(v, path)):
                return found
        path.pop()
        state[u] = 2
        return None

    for m in g:
        if m not in state and (found := visit(m, [])):
            return found
    return None


def test_the_package_has_its_rooms():
    rooms = {
        m.split(".")[1] for m in MODULES if m.count(".") == 1 and (ROOT / m.split(".")[1]).is_dir()
    }
    assert rooms >= {"ops", "solvers", "unfolded", "train", "data", "studies", "clip",
                     "pipeline", "figures"}  # fmt: skip


def test_every_module_imports_in_a_fresh_interpreter():
    code = (
        "import importlib, json, sys\n"
        f"for m in {MODULES!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('deepunfold'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert set(MODULES) <= set(json.loads(out.stdout))


def test_import_graph_has_no_cycles():
    assert find_cycle(graph()) is None


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_layers_point_one_way():
    g = graph()
    for m, deps in g.items():
        layer = m.split(".")[1] if "." in m else ""
        if layer != "pipeline":
            used = {d for d in deps if d.startswith("deepunfold.pipeline")}
            assert used <= PIPELINE_FOR_THE_LIBRARY, (m, used - PIPELINE_FOR_THE_LIBRARY)
        else:  # the pipeline layer knows paths and keys, not the maths
            assert all(d.startswith("deepunfold.pipeline") for d in deps - {"deepunfold"}), m
        if layer != "figures":  # figures are the top: nothing in the library plots
            assert not any(d.startswith("deepunfold.figures") for d in deps), m


def test_parse_time_modules_do_not_import_the_numerical_stack():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in PARSE_TIME)
        + "print(sorted(m for m in ('torch', 'numpy', 'pandas', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"


def test_documented_top_level_names_import():
    from deepunfold import fista, ista, soft_threshold, svt  # noqa: F401

    for name in deepunfold.__all__:
        assert callable(getattr(deepunfold, name)) or isinstance(getattr(deepunfold, name), type)
