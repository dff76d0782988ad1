"""The git version manager passes mlxcore's version-manager contract, with each policy that lets a dirty tree
run (``record``: the last commit runs, the diff is kept; ``commit``: the change is committed first) and with
the one that refuses it (``error``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlx_git.manager import GitVersionManager
from mlxcore.testing import VersionManagerContract


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("on_dirty", ["record", "commit", "error"])
class TestGitVersionManager(VersionManagerContract):
    @pytest.fixture
    def version_manager(self, on_dirty: str, tmp_path: Path) -> GitVersionManager:
        return GitVersionManager(on_dirty=on_dirty, snapshot_root=str(tmp_path / "snapshots"))

    @pytest.fixture
    def project(self, tmp_path: Path) -> Path:
        root = tmp_path / "repo"
        root.mkdir()
        git(root, "init", "--quiet", "--initial-branch=main")
        for key, value in (("user.name", "Test User"), ("user.email", "test@example.com"), ("commit.gpgsign", "false")):
            git(root, "config", key, value)
        (root / "main.py").write_text("print('committed')\n")
        git(root, "add", "main.py")
        git(root, "commit", "--quiet", "-m", "main")
        return root

    @pytest.fixture
    def recorded_source(self, project: Path):
        return lambda prepared: git(project, "show", f"{prepared.record['commit']}:main.py")
