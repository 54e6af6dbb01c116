"""Code provenance: the library files a pipeline script's results depend on.

A rule's code inputs are derived, never listed by hand: :func:`script_sources` reads a
script with :mod:`ast`, collects every ``deepunfold`` import in it (module level and lazy
imports inside functions alike), and follows them through the library transitively. The
result is the list of source files whose edit must rerun the rule, including the
``__init__.py`` of every package on the way (Python executes them on import).

Only static imports are seen. The library resolves its lazy top-level names through the
``_LAZY`` table of ``deepunfold/__init__.py``, which is read here too; ``importlib`` calls
with computed names are not used anywhere else in the library, and must not be.

Imported with the standard library only: the workflow calls it while it parses the
Snakefile, before any job, so a dry run stays fast.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "deepunfold"
LIBRARY_ROOT = Path(__file__).resolve().parents[1]

#: Modules whose edit cannot change any result, with the reason. They are left out of
#: every rule's inputs. Keep this the only such list, and keep it short: a module that
#: computes anything, seeds anything or writes any result file does not belong here.
EXCLUDED: dict[str, str] = {
    "deepunfold.pipeline.provenance": (
        "computes the DAG's code inputs while the Snakefile is parsed; it is not imported "
        "by any job and produces no result"
    ),
}


def module_file(module: str, root: Path = LIBRARY_ROOT) -> Path | None:
    """The source file of ``module`` (dotted, starting with ``deepunfold``), or None."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGE, *parts])


def _lazy_table(tree: ast.Module) -> dict[str, str]:
    """The ``_LAZY = {name: submodule}`` literal of a package ``__init__``, if any."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    return {}


def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as err:
        raise ValueError(f"cannot derive the code inputs of {path}: {err}") from err


def direct_imports(path: str | Path, root: Path = LIBRARY_ROOT) -> set[str]:
    """Library modules that the file at ``path`` imports itself (anywhere in the file)."""
    path = Path(path)
    tree = _parse(path)
    here = None
    if path.resolve().is_relative_to(root):
        here = _module_name(path.resolve(), root)
        if path.name != "__init__.py":
            here = here.rsplit(".", 1)[0]  # the package that relative imports start from
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if here is None:
                    continue
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if mod.split(".")[0] != PACKAGE:
                continue
            found.add(mod)
            target = module_file(mod, root)
            lazy = _lazy_table(_parse(target)) if target and target.name == "__init__.py" else {}
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                if module_file(sub, root) is not None:
                    found.add(sub)
                elif alias.name in lazy:
                    found.add(f"{mod}.{lazy[alias.name]}")
    return found


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@cache
def _closure(module: str, root: Path) -> frozenset[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        mod = todo.pop()
        for name in _with_parents(mod):
            if name in seen:
                continue
            path = module_file(name, root)
            if path is None:
                raise ValueError(f"import of {name!r}: no such module under {root}")
            seen.add(name)
            todo.extend(direct_imports(path, root))
    return frozenset(seen)


def transitive_imports(path: str | Path, root: Path = LIBRARY_ROOT) -> list[str]:
    """Every library module that importing or running ``path`` executes, sorted."""
    mods: set[str] = set()
    for mod in direct_imports(path, root):
        mods |= _closure(mod, root)
    return sorted(m for m in mods if m not in EXCLUDED)


def script_sources(
    script: str | Path, root: Path = LIBRARY_ROOT, relative_to: str | Path | None = None
) -> list[str]:
    """Source files a script's results depend on: its library modules' files, sorted.

    With ``relative_to``, paths are written relative to that directory (the workflow's
    working directory), as Snakemake inputs are.
    """
    files = [module_file(m, root) for m in transitive_imports(script, root)]
    if relative_to is not None:
        base = Path(relative_to).resolve()
        return sorted(str(f.resolve().relative_to(base)) for f in files)
    return sorted(str(f) for f in files)
