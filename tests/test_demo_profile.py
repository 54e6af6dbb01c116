"""The `demo` workflow profile is the offline demo, whatever order the arguments come in."""

from pathlib import Path

import yaml
from helpers import copy_workflow, job_counts, snakemake

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "workflow" / "profiles"
DEMO_PROFILE = ("--workflow-profile", "workflow/profiles/demo")


def dry_run(workdir: Path, *args: str) -> dict[str, int]:
    counts = job_counts(snakemake(workdir, "--dry-run", *args).stdout)
    assert counts, "no job table in the dry run"
    return counts


def test_demo_profile_dry_run_is_the_demo(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    by_profile = dry_run(wd, *DEMO_PROFILE)
    by_configfile = dry_run(wd, "--cores", "2", "--configfile=config/demo.yaml")
    assert by_profile == by_configfile
    # the demo, not the full study: the tiny CLIP is trained, nothing is downloaded
    assert by_profile["clip_train_tinyclip"] == 1
    assert not [rule for rule in by_profile if rule.startswith("download_")]
    # a target after the profile is a target, not one more config file: the same jobs less
    # the default rule `all` that only names results/figures/all
    with_target = dry_run(wd, *DEMO_PROFILE, "results/figures/all")
    assert by_profile.pop("all") == 1
    by_profile["total"] -= 1
    assert with_target == by_profile


def test_demo_profile_repeats_the_local_defaults():
    # A --workflow-profile replaces workflow/profiles/default/ instead of adding to it.
    default = yaml.safe_load((PROFILES / "default" / "profile.yaml").read_text())
    demo = yaml.safe_load((PROFILES / "demo" / "profile.yaml").read_text())
    assert demo.pop("configfile") == "config/demo.yaml"
    assert demo == default


def readme_set_up_commands() -> list[str]:
    """The lines of the first code block under README.md's "Set-up" heading."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Set-up", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_set_up_commands_verbatim():
    commands = readme_set_up_commands()
    assert len(commands) == 2
    install, tests = commands
    # command 1 installs and runs the main job on the offline demo; command 2 runs the tests
    assert install.endswith("&& snakemake --workflow-profile workflow/profiles/demo")
    assert tests == "python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install in ci and tests in ci
    assert ci.index(install) < ci.index(tests)
