"""Compare the results/ trees of two runs of the workflow (e.g. a Slurm run and a local run).

    python tests/slurm/compare_runs.py LOCAL_WORKDIR SLURM_WORKDIR

Every file under ``results/`` is compared byte for byte, except ``results/benchmarks/``
(wall-clock timings differ by nature). The figure manifest ``results/figures/all`` is compared
by content: its file list (path, bytes, sha256) and its config must be equal; its package
versions are reported if they differ. For a table that differs, the columns that differ are
named (a column of wall-clock times, say). A PyTorch checkpoint (.pt)
whose bytes differ but whose tensors and metadata are equal counts as equal, with a note.
Prints one line per difference grouped by kind (tables, figures, manifest, other) and exits 1
if anything differs or a file exists in only one run. With ``--subset`` the second run may have
built only part of the first (some stages disabled): files only in the first run and the
manifest (whose config then differs) are left out.
"""

from __future__ import annotations

import argparse
import csv
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
                ha, hb = ((f or {}).get("sha256", "absent")[:12] for f in (fa.get(p), fb.get(p)))
                cmp.notes.append(f"manifest entry differs: {p} (sha256 {ha}.. vs {hb}..)")
    if ma.get("config") != mb.get("config"):
        same = False
        cmp.notes.append("manifest config differs")
    if ma.get("versions") != mb.get("versions"):
        cmp.notes.append("manifest package versions differ (not counted as a difference)")
    return same


def table_columns_differing(a: Path, b: Path) -> list[str] | None:
    """Header names of the columns whose cells differ; None if the shapes or headers differ."""
    delimiter = "\t" if a.suffix.lower() == ".tsv" else ","
    try:
        ra, rb = ([*csv.reader(p.open(newline=""), delimiter=delimiter)] for p in (a, b))
    except (UnicodeDecodeError, csv.Error):
        return None
    if not ra or not rb or ra[0] != rb[0] or len(ra) != len(rb):
        return None
    if any(len(x) != len(ra[0]) for x in ra + rb):
        return None
    cols = {
        j
        for x, y in zip(ra[1:], rb[1:], strict=True)
        for j, (u, v) in enumerate(zip(x, y, strict=True))
        if u != v
    }
    return [ra[0][j] for j in sorted(cols)]


def checkpoints_equal(a: Path, b: Path) -> bool:
    """Equal tensors and metadata in two torch.save files (their zip bytes may differ)."""
    import torch

    def same(x, y) -> bool:
        if torch.is_tensor(x) or torch.is_tensor(y):
            return torch.is_tensor(x) and torch.is_tensor(y) and torch.equal(x, y)
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
            return len(x) == len(y) and all(same(u, v) for u, v in zip(x, y, strict=True))
        return x == y

    try:
        xa, xb = (torch.load(p, map_location="cpu", weights_only=False) for p in (a, b))
    except Exception:
        return False
    return same(xa, xb)


def compare(
    dir_a: Path,
    dir_b: Path,
    names: tuple[str, str] = ("a", "b"),
    subset: bool = False,
) -> Comparison:
    """Compare the results/ trees of two workdirs (see the module docstring)."""
    fa, fb = result_files(dir_a), result_files(dir_b)
    if not fa and not fb:
        raise SystemExit(f"no files under {dir_a}/results or {dir_b}/results: nothing to compare")
    cmp = Comparison()
    if subset:
        fa = {rel: path for rel, path in fa.items() if rel in fb and rel != MANIFEST}
        fb.pop(MANIFEST, None)
        cmp.notes.append(f"subset: {len(fb)} files of the {names[1]} run compared")
    cmp.only_in[names[0]] = sorted(set(fa) - set(fb))
    cmp.only_in[names[1]] = sorted(set(fb) - set(fa))
    for rel in sorted(set(fa) & set(fb)):
        kind = kind_of(rel)
        if kind == "manifest":
            same = compare_manifests(fa[rel], fb[rel], cmp)
        else:
            same = digest(fa[rel]) == digest(fb[rel])
        if not same and Path(rel).suffix.lower() in (".tsv", ".csv"):
            cols = table_columns_differing(fa[rel], fb[rel])
            if cols is None:
                cmp.notes.append(f"{rel}: header or number of rows/columns differs")
            else:
                cmp.notes.append(f"{rel}: columns differing: {', '.join(cols) or '(bytes only)'}")
        if not same and Path(rel).suffix.lower() == ".pt" and checkpoints_equal(fa[rel], fb[rel]):
            cmp.notes.append(f"{rel}: bytes differ, tensors and metadata equal")
            same = True
        (cmp.equal if same else cmp.different).setdefault(kind, []).append(rel)
    return cmp


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="workdir of the first run (e.g. local)")
    parser.add_argument("second", type=Path, help="workdir of the second run (e.g. slurm)")
    parser.add_argument("--names", nargs=2, default=("local", "slurm"), metavar=("A", "B"))
    parser.add_argument(
        "--subset", action="store_true", help="the second run built part of the first's outputs"
    )
    args = parser.parse_args(argv)
    cmp = compare(args.first, args.second, tuple(args.names), args.subset)
    print(cmp.report(tuple(args.names)))
    return 0 if cmp.ok else 1


if __name__ == "__main__":
    sys.exit(main())
