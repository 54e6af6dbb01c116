"""The library's layout: every module imports, the import graph has no cycles, and the layers
depend on each other in one direction only (docs/architecture.md).

The graph is read statically (``deepunfold.pipeline.provenance.direct_imports``, the analysis
that gives the rules their code inputs), lazy imports inside functions included, so a cycle or
an import against the order is found even where Python's import order would hide it, or where
the import only runs in a function nobody has called yet.
"""

import ast
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
#: The layers, bottom first: a module may import from its own layer or a lower one, never a
#: higher one. Every package of the library is in exactly one layer (the top-level
#: ``deepunfold/__init__.py`` only re-exports names of ``ops`` and ``solvers``).
LAYERS = [
    "io",
    "ops",
    "data",
    "solvers",
    "train",
    "unfolded",
    "studies",
    "clip",
    "figures",
    "pipeline",
]
# what the pipeline layer may import besides itself: it knows paths and keys, not the maths
PIPELINE_MAY_IMPORT = {"deepunfold.io", "deepunfold.data", "deepunfold.data.torchvision_files"}
# the modules the workflow imports while it parses the Snakefile: a dry run must stay fast
PARSE_TIME = [
    "deepunfold.pipeline.config",
    "deepunfold.pipeline.provenance",
    "deepunfold.pipeline.resources",
]


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
    assert rooms >= {
        "ops",
        "solvers",
        "unfolded",
        "train",
        "data",
        "studies",
        "clip",
        "pipeline",
        "figures",
    }


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


def layer_of(module: str) -> str | None:
    """The layer of a library module (``deepunfold.<layer>[.…]``); None for the package root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def against_the_order(g: dict[str, set[str]], layers: list[str] = LAYERS) -> list[str]:
    """Every import of ``g`` that points from a layer to a higher one, as ``"a -> b"``."""
    rank = {name: i for i, name in enumerate(layers)}
    bad = []
    for m, deps in sorted(g.items()):
        if layer_of(m) is None:
            continue
        for d in sorted(deps):
            if layer_of(d) is not None and rank[layer_of(d)] > rank[layer_of(m)]:
                bad.append(f"{m} -> {d}")
    return bad


def test_every_module_is_in_a_layer():
    unplaced = sorted(m for m in MODULES if m != "deepunfold" and layer_of(m) not in LAYERS)
    assert not unplaced, f"add their package to LAYERS (and docs/architecture.md): {unplaced}"


def test_layers_point_one_way():
    assert against_the_order(graph()) == []


def test_an_import_against_the_order_is_caught():
    g = {
        "deepunfold.solvers.a": {"deepunfold.ops.prox", "deepunfold.studies.b"},  # up: caught
        "deepunfold.studies.b": {"deepunfold.solvers.a", "deepunfold.studies.c"},  # down, same
        "deepunfold.studies.c": {"deepunfold.io"},
        "deepunfold.io": {"deepunfold.pipeline.x"},  # the bottom importing the top
        "deepunfold": {"deepunfold.solvers.a"},  # the root re-exports: not in a layer
    }
    assert against_the_order(g) == [
        "deepunfold.io -> deepunfold.pipeline.x",
        "deepunfold.solvers.a -> deepunfold.studies.b",
    ]


def test_a_lazy_import_against_the_order_is_caught(tmp_path):
    """An import inside a function counts: the graph is static, not what Python has run."""
    pkg = tmp_path / "deepunfold"
    for sub in ("data", "unfolded"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "unfolded" / "net.py").write_text("x = 1\n")
    (pkg / "data" / "gen.py").write_text(
        "def make():\n    from deepunfold.unfolded.net import x\n    return x\n"
    )
    g = {
        m: direct_imports(module_file(m, pkg), root=pkg)
        for m in ("deepunfold.data.gen", "deepunfold.unfolded.net")
    }
    assert against_the_order(g) == ["deepunfold.data.gen -> deepunfold.unfolded.net"]


def test_the_pipeline_layer_imports_no_maths():
    for m, deps in graph().items():
        if layer_of(m) == "pipeline":
            other = {d for d in deps if layer_of(d) not in ("pipeline", None)}
            assert other <= PIPELINE_MAY_IMPORT, (m, other - PIPELINE_MAY_IMPORT)


def test_only_figures_plot():
    for m in MODULES:
        if layer_of(m) == "figures":
            continue
        tree = ast.parse(module_file(m).read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "matplotlib" for n in names), m


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
