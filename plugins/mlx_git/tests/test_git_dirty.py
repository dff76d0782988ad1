"""Uncommitted changes and untracked files under each policy; ``ask`` on a real pseudo-terminal."""

from __future__ import annotations

import os
import subprocess

import pytest


def make_dirty(project) -> None:
    project.write("helpers/lib.py", "VALUE = 2\n")  # a tracked change
    project.write("notes.txt", "an untracked file\n")


def run_on_terminal(project, answers: bytes, *args: str) -> subprocess.CompletedProcess:
    """Launch with a pseudo-terminal as stdin, the ``answers`` already typed; stdout/stderr are pipes."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(project.launch_args(*args), cwd=project.root, stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=project.env)
        os.close(slave)
        os.write(master, answers)
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_error_is_the_default_without_a_terminal_and_lists_the_files(project):
    make_dirty(project)
    result = project.run()
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("mlxcore: error: ") and "helpers/lib.py" in line and "notes.txt" in line
    assert "on_dirty=record" in line  # says what to do
    assert project.run_ids() == [] and project.snapshot_dirs() == []


def test_untracked_files_alone_count_unless_ignored(project):
    project.write("scratch.tmp", "x")
    result = project.run("+mlx.version_manager.on_dirty=error")
    assert result.returncode == 2 and "untracked: scratch.tmp" in result.stderr
    result = project.run("+mlx.version_manager.on_dirty=error", "+mlx.version_manager.ignore=['*.tmp']")
    assert result.returncode == 0, result.stderr
    assert project.info(1)["version"]["dirty"] is False


def test_record_runs_the_commit_and_saves_a_patch_that_rebuilds_the_tree(project, tmp_path, run_git):
    sha = project.head()
    make_dirty(project)
    project.write("extra/new_module.py", "X = 1\n")
    (project.root / "extra" / "weights.bin").write_bytes(bytes(range(256)) * 4)
    project.git("rm", "--quiet", "experiments/run.py")  # a staged deletion
    result = project.run("+mlx.version_manager.on_dirty=record")
    assert result.returncode == 0, result.stderr
    assert project.probe(1)["value"] == 1  # the committed code ran
    version = project.info(1)["version"]
    assert version["commit"] == sha and version["dirty"] is True and version["on_dirty"] == "record"
    assert version["patch"] == "metadata/uncommitted.patch"
    assert set(version["modified"]) == {"helpers/lib.py", "experiments/run.py"}
    assert set(version["untracked"]) == {"notes.txt", "extra/"}

    # the patch turns a checkout of the commit into the working tree, binary file included
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "--quiet", str(project.root), str(clone))
    run_git(clone, "checkout", "--quiet", sha)
    run_git(clone, "apply", "--binary", str(project.logs / "1" / "metadata" / "uncommitted.patch"))
    for name in ("helpers/lib.py", "notes.txt", "extra/new_module.py", "extra/weights.bin"):
        assert (clone / name).read_bytes() == (project.root / name).read_bytes(), name
    assert not (clone / "experiments" / "run.py").exists()


def test_commit_policy_commits_everything_with_a_message_that_says_so(project):
    before = project.head()
    make_dirty(project)
    result = project.run("+mlx.version_manager.on_dirty=commit")
    assert result.returncode == 0, result.stderr
    after = project.head()
    assert after != before and project.git("rev-parse", "HEAD~1") == before
    message = project.git("log", "-1", "--format=%s")
    assert "mlxcore" in message and "automatic commit" in message and "on_dirty=commit" in message
    assert set(project.git("show", "--name-only", "--format=", "HEAD").split()) == {"helpers/lib.py", "notes.txt"}
    assert project.git("status", "--porcelain") == "?? logs/"  # everything else is committed
    version = project.info(1)["version"]
    assert version["commit"] == after and version["committed_by_mlxcore"] is True and version["dirty"] is False
    assert project.probe(1)["value"] == 2


def test_ask_without_a_terminal_refuses_instead_of_waiting(project):
    make_dirty(project)
    result = project.run("+mlx.version_manager.on_dirty=ask", timeout=30)
    assert result.returncode == 2 and "needs a terminal" in result.stderr
    assert project.run_ids() == []


def test_ask_on_a_terminal_adds_untracked_files_and_commits_with_the_typed_message(project):
    make_dirty(project)
    result = run_on_terminal(project, b"a\nc\nmy own message\n")  # no policy given: a terminal means ask
    assert result.returncode == 0, result.stderr
    assert "notes.txt" in result.stderr and "[c]ommit now" in result.stderr  # the questions went to stderr
    assert project.git("log", "-1", "--format=%s") == "my own message"
    assert project.git("status", "--porcelain") == "?? logs/"
    assert project.info(1)["version"]["commit"] == project.head() and project.probe(1)["value"] == 2


def test_ask_ignore_untracked_then_record(project):
    sha = project.head()
    make_dirty(project)
    result = run_on_terminal(project, b"i\nr\n", "+mlx.version_manager.on_dirty=ask")
    assert result.returncode == 0, result.stderr
    assert project.head() == sha and project.probe(1)["value"] == 1
    version = project.info(1)["version"]
    assert version["dirty"] is True and version["on_dirty"] == "ask"
    assert "notes.txt" in (project.logs / "1" / "metadata" / "uncommitted.patch").read_text()


@pytest.mark.parametrize("answers, reason", [(b"q\n", "aborted at the prompt"), (b"\x04", "end of input"),
                                             (b"maybe\nq\n", "aborted at the prompt")])
def test_ask_abort_leaves_everything_as_it_was(project, answers, reason):
    sha = project.head()
    make_dirty(project)
    status = project.git("status", "--porcelain")
    result = run_on_terminal(project, answers)
    assert result.returncode == 2 and reason in result.stderr, result.stderr
    assert project.head() == sha and project.git("status", "--porcelain") == status
    assert project.run_ids() == []


def test_ask_with_only_tracked_changes_skips_the_untracked_question(project):
    project.write("helpers/lib.py", "VALUE = 3\n")
    result = run_on_terminal(project, b"c\n\n")  # empty message: the default one, which names mlxcore
    assert result.returncode == 0, result.stderr
    assert "untracked path" not in result.stderr
    assert project.git("log", "-1", "--format=%s").startswith("mlxcore: automatic commit")
    assert project.probe(1)["value"] == 3


LAZY = """
import mlxcore


@mlxcore.launch(config_path="./configs")
def main(ctx):
    try:
        import helpers.only_here  # imported by the task, at run time
        found = True
    except ImportError:
        found = False
    ctx.logger.log_metrics({"found": found}, log_name="probe")


if __name__ == "__main__":
    main()
"""


def test_the_task_cannot_import_uncommitted_modules_from_the_working_tree(project):
    project.write("lazy.py", LAZY)
    project.commit("lazy import")
    project.write("helpers/only_here.py", "VALUE = 'uncommitted'\n")
    assert project.run(script="lazy.py", version_manager=False).returncode == 0
    assert project.probe(1)["found"] is True  # without a version manager the working tree is imported
    result = project.run("+mlx.version_manager.on_dirty=record", script="lazy.py",
                         env={"PYTHONPATH": str(project.root)})
    assert result.returncode == 0, result.stderr
    assert project.probe(2)["found"] is False
