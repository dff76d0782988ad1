"""Every refusal is one line on stderr, exit code 2, and leaves no run, no snapshot and no commit behind."""

from __future__ import annotations

import shutil

import pytest


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("mlxcore: error: ")
    return line


def test_not_a_git_repository(project):
    shutil.rmtree(project.root / ".git")
    line = one_error_line(project.run())
    assert "is not inside a git repository" in line and str(project.root) in line
    assert project.run_ids() == []


def test_no_commits_yet(project, run_git):
    shutil.rmtree(project.root / ".git")
    run_git(project.root, "init", "--quiet")
    line = one_error_line(project.run())
    assert "has no commits yet" in line


def test_git_executable_missing(project, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = project.run(env={"PATH": str(empty)})  # python is started by its absolute path
    line = one_error_line(result)
    assert "git executable 'git' is not on PATH" in line
    assert project.snapshot_dirs() == []


@pytest.mark.parametrize("policy", ["record", "commit"])
def test_snapshot_root_not_writable(project, tmp_path, policy):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    before = project.head()
    project.write("helpers/lib.py", "VALUE = 2\n")
    result = project.run(f"+mlx.version_manager.on_dirty={policy}",
                         f"+mlx.version_manager.snapshot_root={blocker}/snapshots")
    line = one_error_line(result)
    assert f"snapshot root {blocker}/snapshots is not writable" in line
    assert project.head() == before  # the check comes before a policy commits anything


def test_script_not_in_the_commit(project):
    shutil.copy(project.root / "main.py", project.root / "new_script.py")
    line = one_error_line(project.run("+mlx.version_manager.on_dirty=record", script="new_script.py"))
    assert "new_script.py is not in commit" in line


def test_unknown_option_values_name_the_valid_ones(project):
    line = one_error_line(project.run("+mlx.version_manager.on_dirty=sometimes"))
    assert "'sometimes'" in line and "record" in line and "commit" in line
    line = one_error_line(project.run("+mlx.version_manager.on_drity=record"))
    assert "on_dirty" in line  # did you mean
    line = one_error_line(project.run("+mlx.version_manager.workdir=home"))
    assert "launch" in line and "snapshot" in line


def test_full_error_shows_the_exception_class(project):
    shutil.rmtree(project.root / ".git")
    result = project.run(env={"MLXCORE_FULL_ERROR": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr and "NotARepositoryError" in result.stderr
