"""The Slurm profile (workflow/profiles/slurm) and its end-to-end proof on a real Slurm.

The profile tests run everywhere. ``test_demo_on_a_real_slurm_cluster`` runs
tests/slurm/run_slurm_e2e.sh (installs slurm-wlm, munge, slurmdbd and MariaDB with apt, starts a
one-node cluster, runs the demo DAG with the Slurm profile and compares it with the suite's local
demo run). It needs root and apt-get, and runs only when DEEPUNFOLD_SLURM_TEST=1, because it
installs system packages and writes /etc/slurm/; elsewhere it is skipped, saying why. Opted in,
it cannot pass wrongly: a machine where it cannot run (not root, no apt-get, the script's exit
status 2) fails the test instead of skipping it.
DEEPUNFOLD_SLURM_STAGES (comma-separated config sections, or "all") picks the stages run through
Slurm; default robust,multilayer: a stage with a GPU rule (multilayer_train, so the GPU requests
are scheduled for real) whose outputs are byte-reproducible and that fits the 10-minute budget
(the whole demo took 12 minutes through Slurm on 2 shared cores).
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEMO, ROOT, SCHEMA, copy_workflow, job_counts, snakemake

from deepunfold.pipeline.config import validate_config

sys.path.insert(0, str(ROOT / "tests" / "slurm"))
import compare_runs  # noqa: E402

SCRIPT = ROOT / "tests" / "slurm" / "run_slurm_e2e.sh"
PROFILE = ("--workflow-profile", "workflow/profiles/slurm")
ROBUST_TABLE = "results/robust/estimates.tsv"
MULTILAYER_K0 = "results/multilayer/mlista_net/k0/summary.tsv"
LISTA_MODEL = "results/lista/seed/alista.pt"


def gpu_rules() -> list[str]:
    """The profile's list of rules that get a GPU (its YTE definition ``gpu_rules = [...]``)."""
    text = (ROOT / "workflow/profiles/slurm/profile.yaml").read_text()
    return re.findall(r"\w+", re.search(r"gpu_rules = \[(.*)\]", text).group(1))


SLURM_ENV = (
    "DEEPUNFOLD_SLURM_GPUS",
    "DEEPUNFOLD_SLURM_GPU_MODEL",
    "DEEPUNFOLD_SLURM_ACCOUNT",
    "DEEPUNFOLD_SLURM_PARTITION",
)


def _profile_dry_run(wd: Path, monkeypatch, env: dict, *targets: str) -> str:
    """Dry run of ``targets`` under the Slurm profile with exactly ``env`` set."""
    for name in SLURM_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return snakemake(wd, *targets, *PROFILE, "--dry-run", *DEMO[2:]).stdout


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("slurm_profile"))


def _resources(stdout: str, rule: str) -> dict[str, str]:
    """The "resources:" line a dry run prints for ``rule``, as {name: value}."""
    block = stdout.split(f"rule {rule}:", 1)[1]
    line = next(x for x in block.splitlines() if x.strip().startswith("resources:"))
    return dict(kv.split("=", 1) for kv in line.split(":", 1)[1].strip().split(", "))


def test_profile_requests_gpus_for_gpu_rules_and_switches_off(wf, monkeypatch):
    targets = (MULTILAYER_K0, LISTA_MODEL, ROBUST_TABLE)
    out = _profile_dry_run(wf, monkeypatch, {}, *targets)
    on = _resources(out, "multilayer_train")  # default: 1 GPU
    assert on["gpu"] == "1"
    assert on["mem_mb"] == "8000" and on["runtime"] == "720"  # the rule's own values win
    assert "slurm_account" not in on and "slurm_partition" not in on
    # a training rule with a device key asks for one; a rule that trains nothing does not
    assert _resources(out, "lista_train")["gpu"] == "1"
    assert "gpu" not in _resources(out, "robust_estimates")
    # exactly the profile's gpu_rules ask for a GPU, whatever their name
    asking = {
        rule for rule in re.findall(r"^rule (\w+):$", out, re.M) if "gpu" in _resources(out, rule)
    }
    assert asking == set(gpu_rules()) & set(re.findall(r"^rule (\w+):$", out, re.M))
    assert _resources(out, "robust_estimates")["mem_mb"] == "1000"
    env = {
        "DEEPUNFOLD_SLURM_GPUS": "0",
        "DEEPUNFOLD_SLURM_ACCOUNT": "input",  # a Python name: must stay a plain string
        "DEEPUNFOLD_SLURM_PARTITION": "short",
    }
    off = _resources(_profile_dry_run(wf, monkeypatch, env, MULTILAYER_K0), "multilayer_train")
    assert off["gpu"] == "0"
    assert off["slurm_account"] == "input" and off["slurm_partition"] == "short"
    env = {"DEEPUNFOLD_SLURM_GPUS": "2", "DEEPUNFOLD_SLURM_GPU_MODEL": "a100"}
    model = _resources(_profile_dry_run(wf, monkeypatch, env, MULTILAYER_K0), "multilayer_train")
    assert model["gpu"] == "2" and model["gpu_model"] == "a100"


def test_profile_gpu_rules_exist_and_select_a_device():
    """The profile's GPU rules exist and are exactly the rules whose script selects its device
    (through pipeline.device.resolve_device, which picks CUDA where present)."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--list-rules", *DEMO[2:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = {line.strip() for line in proc.stdout.splitlines()}
    rules = gpu_rules()
    assert rules and set(rules) <= listed, (rules, listed)
    selecting = set()
    for f in (ROOT / "workflow/rules").glob("*.smk"):
        text = f.read_text()
        for rule, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", text, re.M | re.S):
            found = re.search(r'"\.\./scripts/(\w+\.py)"', body)
            if found is None:
                continue
            code = (ROOT / "workflow/scripts" / found.group(1)).read_text()
            if "resolve_device(" in code:
                selecting.add(rule)
    assert selecting == set(rules), (sorted(selecting ^ set(rules)), "differ")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _manifest(files, versions="1.0"):
    return json.dumps({"files": files, "config": {"a": 1}, "versions": {"torch": versions}})


def test_compare_runs_reports_each_kind_of_difference(tmp_path):
    entry = [{"path": "results/t.tsv", "sha256": "x", "bytes": 3}]
    base = {
        "results/t.tsv": "a\t1\n",
        "results/figures/f.png": "png",
        "results/benchmarks/b.tsv": "s\n1.0\n",
        "results/figures/all": _manifest(entry),
    }
    a = _tree(tmp_path / "a", base)
    b = _tree(tmp_path / "b", {**base, "results/benchmarks/b.tsv": "s\n9.0\n"})
    same = compare_runs.compare(a, b)
    assert same.ok and same.equal["tables"] == ["results/t.tsv"]
    assert "results/benchmarks/b.tsv" not in str(same.equal)  # timings are not compared

    c = _tree(tmp_path / "c", {**base, "results/figures/all": _manifest(entry, versions="2.0")})
    assert compare_runs.compare(a, c).ok  # versions only noted

    changed = {
        **base,
        "results/t.tsv": "a\t2\n",
        "results/figures/f.png": "PNG",
        "results/extra.csv": "1\n",
        "results/figures/all": _manifest([{**entry[0], "sha256": "y"}]),
    }
    d = compare_runs.compare(a, _tree(tmp_path / "d", changed), ("local", "slurm"))
    assert not d.ok
    assert d.different == {
        "tables": ["results/t.tsv"],
        "figures": ["results/figures/f.png"],
        "manifest": ["results/figures/all"],
    }
    assert d.only_in == {"local": [], "slurm": ["results/extra.csv"]}
    assert "RESULT: outputs DIFFER" in d.report(("local", "slurm"))
    assert compare_runs.main([str(a), str(b)]) == 0
    assert compare_runs.main([str(a), str(tmp_path / "d")]) == 1

    # A run of some stages only, against the whole run: its files must equal the same files.
    part = _tree(tmp_path / "part", {"results/t.tsv": "a\t1\n", "results/figures/all": "{}"})
    assert compare_runs.compare(a, part, subset=True).ok
    assert not compare_runs.compare(a, part).ok
    (part / "results/t.tsv").write_text("a\t2\n")
    assert not compare_runs.compare(a, part, subset=True).ok


def test_compare_runs_names_differing_columns_and_reads_checkpoints(tmp_path):
    import torch

    header = "lam\tnmse_db\tseconds\n"
    a = _tree(tmp_path / "a", {"results/m.tsv": header + "0.1\t-20.5\t3.2\n"})
    b = _tree(tmp_path / "b", {"results/m.tsv": header + "0.1\t-20.5\t4.7\n"})
    torch.save({"w": torch.ones(3)}, a / "results/model.pt")
    with open(b / "results/model.pt", "wb") as f:  # other archive name inside the zip
        torch.save({"w": torch.ones(3)}, f)
    assert digest_differs(a / "results/model.pt", b / "results/model.pt")
    cmp = compare_runs.compare(a, b)
    assert cmp.different == {"tables": ["results/m.tsv"]}
    assert cmp.equal == {"other": ["results/model.pt"]}
    assert "results/m.tsv: columns differing: seconds" in cmp.notes
    torch.save({"w": torch.zeros(3)}, b / "results/model.pt")
    assert compare_runs.compare(a, b).different["other"] == ["results/model.pt"]


def digest_differs(a: Path, b: Path) -> bool:
    return compare_runs.digest(a) != compare_runs.digest(b)


def test_e2e_script_is_valid_bash_and_documents_itself():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    out = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--compare-with" in out.stdout


def _local_rules() -> set[str]:
    """Rules that run on the submitting host (localrules: blocks and localrule: True)."""
    names = set()
    for smk in (ROOT / "workflow/rules").glob("*.smk"):
        text = smk.read_text()
        for block in re.findall(r"^localrules:\s*\n((?:[ \t]+\w+,?\s*\n)+)", text, re.M):
            names |= set(re.findall(r"\w+", block))
        for rule, body in re.findall(r"^rule (\w+):\n((?:[ \t].*\n|\n)*)", text, re.M):
            if re.search(r"^\s+localrule:\s*True", body, re.M):
                names.add(rule)
    return names


def test_downloads_and_manifest_stay_on_the_submitting_host():
    """Compute nodes often have no network: the download rules must be local rules."""
    assert {"download_mnist", "download_cifar10", "figures_manifest"} <= _local_rules()


@pytest.mark.pipeline
def test_demo_on_a_real_slurm_cluster(request, tmp_path):
    """The demo DAG through sbatch on a one-node Slurm equals the suite's local demo run."""
    if os.environ.get("DEEPUNFOLD_SLURM_TEST") != "1":
        pytest.skip("set DEEPUNFOLD_SLURM_TEST=1 to install and start a local Slurm (root, apt)")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("DEEPUNFOLD_SLURM_TEST=1, but the Slurm end-to-end test needs root and apt-get")
    config = validate_config({}, SCHEMA)
    stages = [k for k, v in config.items() if isinstance(v, dict) and "enabled" in v]
    wanted = os.environ.get("DEEPUNFOLD_SLURM_STAGES", "robust,multilayer")
    keep = stages if wanted == "all" else wanted.split(",")
    assert set(keep) <= set(stages), f"DEEPUNFOLD_SLURM_STAGES: unknown stage in {wanted}"
    disable = [arg for s in stages if s not in keep for arg in ("--disable", s)]
    local_wd, _ = request.getfixturevalue("demo_run")  # only now: it runs the whole demo
    state = tmp_path / "slurm-e2e"
    env = dict(os.environ, PYTHON=sys.executable, SLURM_E2E_STATE=str(state))
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--compare-with", str(local_wd), *disable, "results/figures/all"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=3600,
    )
    # opted in, "cannot run here" (exit 2) is a failure like any other
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout[-8000:]}"
    assert "RESULT: outputs match" in proc.stdout
    print("\n".join(x for x in proc.stdout.splitlines() if x.startswith("TIMING")))

    # Every job but the local rules went through sbatch and is in Slurm's accounting.
    counts = job_counts((state / "log/snakemake-slurm.txt").read_text())
    total = counts.pop("total")
    local = sum(n for rule, n in counts.items() if rule in _local_rules())
    n_slurm = int(re.search(r"^SLURM_JOBS (\d+)$", proc.stdout, re.M).group(1))
    assert n_slurm == total - local > 0
    # The node advertises stand-in GPUs: exactly the jobs of the profile's gpu_rules held one
    # (the script also checks job by job that no other job held a GPU and none of these lacked
    # one); the other training rules run CPU code and ask for none.
    n_rule = int(re.search(r"^SLURM_GPU_RULE_JOBS (\d+)$", proc.stdout, re.M).group(1))
    n_gpu = int(re.search(r"^SLURM_GPU_JOBS (\d+)$", proc.stdout, re.M).group(1))
    assert n_gpu == n_rule == sum(counts.get(rule, 0) for rule in gpu_rules())
    if "multilayer" in keep:
        assert n_gpu > 0
