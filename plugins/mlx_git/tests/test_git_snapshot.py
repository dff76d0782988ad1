"""Snapshots: built once per commit, complete when visible, safe when many processes build the same one."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

#: each process waits for the same instant, notes whether the snapshot existed, builds it, checks it whole
RACER = """
import json, sys, time
from pathlib import Path
from mlx_git.repository import Repository
from mlx_git.snapshot import materialise, snapshot_path

root, snapshots, sha, start, expected = sys.argv[1:6]
repository = Repository.containing(Path(root))
final = snapshot_path(Path(snapshots), repository, sha)
while time.time() < float(start):
    pass
existed = final.is_dir()
path = materialise(repository, sha, Path(snapshots))
files = sum(len(names) for _, _, names in __import__("os").walk(path))
print(json.dumps({"path": str(path), "existed": existed, "files": files, "expected": int(expected)}))
"""


def test_processes_building_the_same_snapshot_at_once_all_get_one_complete_copy(project):
    for i in range(400):  # enough files that building takes a while
        project.write(f"pkg/module_{i:03d}.py", f"VALUE = {i}\n" * 20)
    sha = project.commit("many files")
    expected = len(project.git("ls-files").splitlines())
    start = time.time() + 2.0  # after every interpreter has started
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(project.root), str(project.snapshots), sha,
                               str(start), str(expected)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=project.env) for _ in range(6)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    assert {o["path"] for o in outputs} == {str(project.snapshots / project.root.name / sha)}
    assert all(o["files"] == expected for o in outputs)  # nobody ever saw half a snapshot
    assert sum(not o["existed"] for o in outputs) >= 2  # they really raced
    assert len(project.snapshot_dirs()) == 1 and project.leftovers() == []


def test_two_launches_of_the_same_commit_at_once(project):
    procs = [project.start(f"x={i}") for i in (1, 2)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    [snapshot] = project.snapshot_dirs()
    assert {project.info(i)["version"]["snapshot"] for i in (1, 2)} == {str(snapshot)}
    assert {project.probe(i)["x"] for i in (1, 2)} == {1, 2}
    assert project.leftovers() == []


def test_a_snapshot_is_a_checkout_not_a_release_archive(project):
    """export-ignore does not drop files, and executable bits and symlinks survive."""
    project.write(".gitattributes", "helpers/ export-ignore\ntool.sh export-ignore\n")
    project.write("tool.sh", "#!/bin/sh\necho tool\n")
    os.chmod(project.root / "tool.sh", 0o755)
    os.symlink("helpers/lib.py", project.root / "lib_link.py")
    sha = project.commit("attributes")
    result = project.run()
    assert result.returncode == 0, result.stderr
    snapshot = project.snapshots / project.root.name / sha
    assert (snapshot / "helpers" / "lib.py").read_text() == "VALUE = 1\n"
    assert os.stat(snapshot / "tool.sh").st_mode & stat.S_IXUSR
    assert os.readlink(snapshot / "lib_link.py") == "helpers/lib.py"
    assert not (snapshot / ".git").exists() and not (snapshot / "data").exists()  # no repository, no ignored data
