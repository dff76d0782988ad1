"""Clean trees: the run executes the snapshot of HEAD, from the right directory, and records what ran."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata

import yaml


def test_clean_first_commit_runs_from_its_snapshot_and_records_it(project):
    assert project.git("rev-list", "--count", "HEAD") == "1"  # the repository's first (root) commit
    project.git("remote", "add", "origin", "https://alice:s3cret@example.com/team/proj.git")
    sha = project.head()
    result = project.run()
    assert result.returncode == 0, result.stderr
    snapshot = project.snapshots / project.root.name / sha
    assert project.snapshot_dirs() == [snapshot]

    version = project.info(1)["version"]
    assert version["commit"] == sha
    assert version["branch"] == "main" and version["detached"] is False
    assert version["remote_url"] == "https://example.com/team/proj.git"  # the token is not recorded
    assert version["dirty"] is False and "patch" not in version
    assert version["snapshot"] == str(snapshot)
    assert version["project_dir"] == str(project.root.resolve())
    assert version["python"] == platform.python_version()
    metadata_dir = project.logs / "1" / "metadata"
    assert "s3cret" not in (metadata_dir / "info.yaml").read_text()
    assert not (metadata_dir / "uncommitted.patch").exists()
    requirements = (metadata_dir / "requirements.txt").read_text().splitlines()
    assert requirements[0].startswith(f"# python {platform.python_version()}")
    assert f"GitPython=={metadata.version('GitPython')}" in requirements
    assert any(line.startswith("mlxcore==") for line in requirements)

    probe = project.probe(1)
    assert probe["script"] == str(snapshot / "main.py")
    assert probe["lib"] == str(snapshot / "helpers" / "lib.py")
    assert probe["cwd"] == str(project.root)  # default workdir: where the launch started
    assert probe["data"] == "hello"  # a relative data path (git-ignored data/) still works
    assert probe["project"] == str(project.root.resolve())
    assert project.info(1)["config_dir"] == str(snapshot / "configs")  # the committed configs


def test_the_snapshot_is_reused_and_the_logs_directory_does_not_make_the_tree_dirty(project):
    assert project.run().returncode == 0
    [snapshot] = project.snapshot_dirs()
    (snapshot / "sentinel").write_text("kept")
    assert "?? logs/" in project.git("status", "--porcelain")  # untracked, yet not a change to the code
    result = project.run("x=1,2")
    assert result.returncode == 0, result.stderr
    assert project.snapshot_dirs() == [snapshot] and (snapshot / "sentinel").exists()
    assert [project.info(i)["version"]["dirty"] for i in (2, 3)] == [False, False]
    assert project.leftovers() == []


def test_a_script_in_a_subdirectory_imports_the_snapshot_not_the_working_tree(project):
    project.write("helpers/lib.py", "VALUE = 2\n")  # uncommitted: must not be imported
    # even when the user's PYTHONPATH points into the working tree
    result = project.run("+mlx.version_manager.on_dirty=record", script="experiments/run.py",
                         env={"PYTHONPATH": str(project.root)})
    assert result.returncode == 0, result.stderr
    [snapshot] = project.snapshot_dirs()
    probe = project.probe(1)
    assert probe["script"] == str(snapshot / "experiments" / "run.py")
    assert probe["lib"] == str(snapshot / "helpers" / "lib.py") and probe["value"] == 1


def test_workdir_snapshot_runs_in_the_snapshot_and_keeps_logs_in_the_project(project):
    (project.root / "experiments" / "logs").mkdir()
    result = project.run("+mlx.version_manager.workdir=snapshot", script="experiments/run.py",
                         cwd=project.root / "experiments", env={"PYTHONPATH": str(project.root)})
    assert result.returncode == 0, result.stderr
    [snapshot] = project.snapshot_dirs()
    logs = project.root / "experiments" / "logs"  # ./logs of the launch directory, not of the snapshot
    assert project.run_ids(logs) == [1] and not (snapshot / "experiments" / "logs").exists()
    probe = json.loads((logs / "1" / "metrics" / "probe.json").read_text())
    assert probe["cwd"] == str(snapshot / "experiments")
    assert probe["data"] == "missing"  # relative paths reach committed files only...
    assert probe["data_abs"] == "hello"  # ...and ${oc.env:MLXCORE_PROJECT_DIR} reaches the project


def test_detached_head_runs_the_checked_out_commit(project):
    first = project.head()
    project.write("helpers/lib.py", "VALUE = 2\n")
    project.commit("second")
    project.git("checkout", "--quiet", first)
    result = project.run()
    assert result.returncode == 0, result.stderr
    version = project.info(1)["version"]
    assert version["commit"] == first and version["branch"] is None and version["detached"] is True
    assert project.probe(1)["value"] == 1


def test_mlxcore_plugins_lists_git_without_importing_gitpython(project):
    result = subprocess.run([sys.executable, "-m", "mlxcore", "plugins", "--json"], capture_output=True, text=True,
                            env=project.env, timeout=60)
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["git"]["distribution"] == "mlxcore-git" and rows["git"]["error"] is None
    assert rows["git"]["registered"] == {"version_managers": ["git"]}
    code = ("import sys; from mlxcore.plugins import get_version_manager_class; get_version_manager_class('git'); "
            "print('git' in sys.modules)")
    check = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=project.env, timeout=60)
    assert check.stdout.strip() == "False", check.stderr


def test_settings_in_mlx_yaml_are_honoured(project):
    """``mlx.yaml`` can hold the version manager's options, like every plugin section."""
    settings = {"use_version_manager": True,
                "version_manager": {"name": "git", "on_dirty": "record", "snapshot_root": str(project.snapshots)}}
    project.write("configs/mlx.yaml", yaml.safe_dump(settings))  # uncommitted: the policy record applies
    result = project.run(version_manager=False)
    assert result.returncode == 0, result.stderr
    version = project.info(1)["version"]
    assert version["on_dirty"] == "record" and version["dirty"] is True
    assert version["untracked"] == ["configs/mlx.yaml"]
