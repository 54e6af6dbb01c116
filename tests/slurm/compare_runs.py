"""Compare the results/ trees of two runs of the workflow (e.g. a Slurm run and a local run).

    python tests/slurm/compare_runs.py LOCAL_WORKDIR SLURM_WORKDIR

Every file under ``results/`` is compared byte for byte, except ``results/benchmarks/``
(wall-clock timings differ by nature). The figure manifest ``results/figures/all`` is compared
by content: its file list (path, bytes, sha256) and its config must be equal; its package
versions are reported if they differ. Prints one line per difference grouped by kind (tables,
figures, manifest, other) and exits 1 if anything differs or a file exists in only one run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "results/figures/all"
SKIPPED_DIRS = ("results/benchmarks/",)
KINDS = {
    ".tsv": "tables",
    ".csv": "tables",
    ".txt": "tables",
    ".json": "tables",
    ".parquet": "tables",
    ".png": "figures",
    ".pdf": "figures",
    ".svg": "figures",
}


def kind_of(rel: str) -> str:
    """The comparison group of a results/ path (tables, figures, manifest or other)."""
    if rel == MANIFEST:
        return "manifest"
    return KINDS.get(Path(rel).suffix.lower(), "other")


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def result_files(workdir: Path) -> dict[str, Path]:
    """{path relative to workdir: absolute path} of every file under workdir/results/."""
    root = workdir / "results"
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(workdir).as_posix()
        if path.is_file() and not rel.startswith(SKIPPED_DIRS):
            files[rel] = path
    return files


@dataclass
class Comparison:
    equal: dict[str, list[str]] = field(default_factory=dict)
    different: dict[str, list[str]] = field(default_factory=dict)
    only_in: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.different.values()) and not any(self.only_in.values())

    def report(self, names: tuple[str, str]) -> str:
        lines = []
        for kind in sorted(set(self.equal) | set(self.different)):
            n_eq, diff = len(self.equal.get(kind, [])), self.different.get(kind, [])
            lines.append(f"{kind}: {n_eq} identical, {len(diff)} different")
            lines += [f"  DIFFERENT {d}" for d in diff]
        for name in names:
            lines += [f"ONLY IN {name}: {p}" for p in self.only_in.get(name, [])]
        lines += [f"note: {n}" for n in self.notes]
        lines.append("RESULT: " + ("outputs match" if self.ok else "outputs DIFFER"))
        return "\n".join(lines)


def compare_manifests(a: Path, b: Path, cmp: Comparison) -> bool:
    """Equal file lists and config; package-version differences are only noted."""
    ma, mb = (json.loads(p.read_text()) for p in (a, b))
    same = True
    if ma.get("files") != mb.get("files"):
        same = False
        fa = {f["path"]: f for f in ma.get("files", [])}
        fb = {f["path"]: f for f in mb.get("files", [])}
        for p in sorted(set(fa) | set(fb)):
            if fa.get(p) != fb.get(p):
                cmp.notes.append(f"manifest entry differs: {p}: {fa.get(p)} vs {fb.get(p)}")
    if ma.get("config") != mb.get("config"):
        same = False
        cmp.notes.append("manifest config differs")
    if ma.get("versions") != mb.get("versions"):
        cmp.notes.append("manifest package versions differ (not counted as a difference)")
    return same


def compare(dir_a: Path, dir_b: Path, names: tuple[str, str] = ("a", "b")) -> Comparison:
    """Compare the results/ trees of two workdirs (see the module docstring)."""
    fa, fb = result_files(dir_a), result_files(dir_b)
    if not fa and not fb:
        raise SystemExit(f"no files under {dir_a}/results or {dir_b}/results: nothing to compare")
    cmp = Comparison()
    cmp.only_in[names[0]] = sorted(set(fa) - set(fb))
    cmp.only_in[names[1]] = sorted(set(fb) - set(fa))
    for rel in sorted(set(fa) & set(fb)):
        kind = kind_of(rel)
        if kind == "manifest":
            same = compare_manifests(fa[rel], fb[rel], cmp)
        else:
            same = digest(fa[rel]) == digest(fb[rel])
        (cmp.equal if same else cmp.different).setdefault(kind, []).append(rel)
    return cmp


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="workdir of the first run (e.g. local)")
    parser.add_argument("second", type=Path, help="workdir of the second run (e.g. slurm)")
    parser.add_argument("--names", nargs=2, default=("local", "slurm"), metavar=("A", "B"))
    args = parser.parse_args(argv)
    cmp = compare(args.first, args.second, tuple(args.names))
    print(cmp.report(tuple(args.names)))
    return 0 if cmp.ok else 1


if __name__ == "__main__":
    sys.exit(main())
