"""The ``git`` version manager: check the tree, snapshot the commit, say where the run executes, record it all.

Where a run executes, and how relative paths resolve (option ``workdir``):

- ``launch`` (default): the working directory stays the directory the launch was started from, exactly as
  without a version manager, so relative paths in the config (``data/train.csv``, ``logger.parent_log_dir``)
  keep meaning what they meant. The *code* is the snapshot's: the script runs from it, its directory is first
  on the import path, and ``PYTHONPATH`` starts with the snapshot root (and its ``src/``), replacing entries
  that pointed into the working tree. The configs are the snapshot's too (``config_path`` is relative to the
  script).
- ``snapshot``: the working directory is the snapshot's copy of the launch directory, so relative paths
  reach committed files only; data outside the repository needs an absolute path or
  ``${oc.env:MLXCORE_PROJECT_DIR}/data``. Runs are still written to the launch's logs directory.

Either way the processes see ``MLXCORE_PROJECT_DIR`` (the repository's working tree) and
``MLXCORE_SNAPSHOT_DIR``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, ClassVar

from mlxcore.errors import ConfigError, UnknownChoiceError
from mlxcore.version_managers import PreparedCode, VersionManager

from .errors import SnapshotError
from .policy import POLICIES, decide
from .requirements import python_version, requirements_text

#: under ``mlxcore`` so the launcher's handler shows the messages (``mlxcore: ...``) at its level
log = logging.getLogger("mlxcore.git")

WORKDIRS = ("launch", "snapshot")
PATCH_FILE = "uncommitted.patch"
REQUIREMENTS_FILE = "requirements.txt"
#: at most this many paths of each kind are listed in the record (the patch has them all)
LISTED_PATHS = 50


class GitVersionManager(VersionManager):
    name = "git"
    options_defaults: ClassVar[dict[str, Any]] = {
        "on_dirty": None,  # ask with a terminal, error without
        "snapshot_root": None,  # $XDG_CACHE_HOME/mlxcore/snapshots
        "workdir": "launch",
        "ignore": ["__pycache__/", "*.pyc", ".ipynb_checkpoints/"],
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        on_dirty, workdir, ignore = self.options["on_dirty"], self.options["workdir"], self.options["ignore"]
        if on_dirty is not None and on_dirty not in POLICIES:
            raise UnknownChoiceError("mlx.version_manager.on_dirty policy", on_dirty, POLICIES)
        if workdir not in WORKDIRS:
            raise UnknownChoiceError("mlx.version_manager.workdir", workdir, WORKDIRS)
        if isinstance(ignore, str):
            ignore = [ignore]
        if not isinstance(ignore, (list, tuple)) or not all(isinstance(p, str) for p in ignore):
            raise ConfigError(f"mlx.version_manager.ignore must be a list of glob patterns, got {ignore!r}")
        self.options["ignore"] = list(ignore)

    def prepare(self, script: Path, interactive: bool) -> PreparedCode:
        from .repository import Repository
        from .snapshot import default_root, ensure_root, materialise

        repository = Repository.containing(script)
        relative_script = repository.relative(script)
        if relative_script is None:
            raise SnapshotError(f"{script} is outside the repository {repository.root}: the snapshot would not hold it")
        root = self._snapshot_root(repository.root, default_root())
        ensure_root(root, repository)
        ignore = self.options["ignore"]
        status = repository.status(ignore, skip=[root])
        decision = decide(status, self.options["on_dirty"], interactive, str(repository.root), relative_script,
                          sys.stdin, sys.stderr)
        if decision.commit:
            sha = repository.commit(decision.paths, decision.message)
            log.info("committed %s: %s", sha[:12], decision.message)
            if repository.branch() is None:
                log.warning("HEAD is detached: commit %s is on no branch", sha[:12])
            status = repository.status(ignore, skip=[root])
        sha = repository.head_sha()
        if not repository.has_file(sha, relative_script):
            raise SnapshotError(f"{relative_script} is not in commit {sha[:12]}: commit it, then launch again")
        patch, left_out = repository.patch(status, ignore) if not status.clean else ("", [])
        snapshot = materialise(repository, sha, root)
        workdir = self._workdir(repository.root, snapshot)
        record: dict[str, Any] = {
            "manager": self.name,
            "commit": sha,
            "branch": repository.branch(),
            "detached": repository.branch() is None,
            "remote_url": repository.remote_url(),
            "dirty": not status.clean,
            "on_dirty": decision.policy,
            "committed_by_mlxcore": decision.commit,
            "project_dir": str(repository.root),
            "snapshot": str(snapshot),
            "script": relative_script,
            "workdir": str(workdir),
            "python": python_version(),
            "requirements": f"metadata/{REQUIREMENTS_FILE}",
        }
        files = {REQUIREMENTS_FILE: requirements_text()}
        if not status.clean:
            record.update(patch=f"metadata/{PATCH_FILE}", modified=status.changed[:LISTED_PATHS],
                          untracked=status.untracked[:LISTED_PATHS])
            if left_out:
                record["not_in_patch"] = left_out[:LISTED_PATHS]
            files[PATCH_FILE] = patch
            log.warning("running commit %s; the uncommitted changes (%s) are saved as metadata/%s", sha[:12],
                        status.describe(3), PATCH_FILE)
        return PreparedCode(workdir=workdir, script=snapshot / relative_script, record=record, files=files,
                            env=self._environment(repository.root, snapshot))

    def _snapshot_root(self, project: Path, default: Path) -> Path:
        """The configured root (``~`` expanded, relative to the repository root) or the default."""
        configured = self.options["snapshot_root"]
        if configured is None:
            return default
        path = Path(str(configured)).expanduser()
        return path if path.is_absolute() else project / path

    def _workdir(self, project: Path, snapshot: Path) -> Path:
        launch = Path.cwd()
        if self.options["workdir"] == "launch":
            return launch
        try:
            counterpart = snapshot / launch.resolve().relative_to(project)
        except ValueError:  # launched from outside the repository
            return snapshot
        return counterpart if counterpart.is_dir() else snapshot

    @staticmethod
    def _environment(project: Path, snapshot: Path) -> dict[str, str]:
        """``PYTHONPATH`` that finds the snapshot's packages first, and never the working tree's."""
        paths = [str(snapshot)] + ([str(snapshot / "src")] if (snapshot / "src").is_dir() else [])
        for entry in filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)):
            try:
                inside = Path(entry).resolve().relative_to(project)
            except ValueError:
                paths.append(entry)
                continue
            paths.append(str(snapshot / inside))
        unique = list(dict.fromkeys(paths))
        return {"PYTHONPATH": os.pathsep.join(unique), "MLXCORE_PROJECT_DIR": str(project),
                "MLXCORE_SNAPSHOT_DIR": str(snapshot)}
