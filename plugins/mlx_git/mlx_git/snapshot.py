"""Snapshots: the tree of one commit, materialised once under ``<root>/<repo-name>/<sha>/`` and reused.

A snapshot is what ``git checkout <sha>`` would put on disk: it is built with a private index
(``read-tree``) and ``checkout-index`` into a temporary directory beside its final place, then renamed there
in one step. A directory at the final path is therefore always complete; when several processes build the
same snapshot at once, the first rename wins and the others discard their copy and use it. Unlike
``git archive``, files marked ``export-ignore`` are kept (a release tarball may drop tests; a run must not)
and smudge filters such as git-lfs apply. Submodules are not part of a commit's tree and are not included.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path

from .errors import SnapshotError
from .repository import Repository

#: under ``mlxcore`` so the launcher's handler shows the messages (``mlxcore: ...``) at its level
log = logging.getLogger("mlxcore.git")


def default_root() -> Path:
    """``$XDG_CACHE_HOME/mlxcore/snapshots`` (``~/.cache/...``): outside every repository, and on clusters
    usually on the shared home, so jobs on other nodes find the snapshot."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mlxcore" / "snapshots"


def snapshot_path(root: Path, repository: Repository, sha: str) -> Path:
    return root / repository.root.name / sha


def ensure_root(root: Path, repository: Repository) -> Path:
    """Create ``<root>/<repo-name>`` and check it can be written, before anything else happens (a policy
    must not commit for a launch that then cannot snapshot).

    :raises SnapshotError: naming the root and the system's reason.
    """
    directory = root / repository.root.name
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
    except OSError as exc:
        raise SnapshotError(f"the snapshot root {root} is not writable ({exc.strerror or exc}): set "
                            "mlx.version_manager.snapshot_root to a writable directory") from None
    return directory


def materialise(repository: Repository, sha: str, root: Path) -> Path:
    """The snapshot of commit ``sha``, built now unless it exists.

    :raises SnapshotError: the root cannot be created or written, or git cannot export the tree.
    """
    final = snapshot_path(root, repository, sha)
    if final.is_dir():
        return final
    building = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}.", suffix=".building", dir=ensure_root(root, repository)))
    try:
        tree = building / "tree"
        env = {"GIT_INDEX_FILE": str(building / "index")}
        repository.run("read-tree", sha, env=env)
        repository.run("checkout-index", "--all", "--force", f"--prefix={tree}{os.sep}", env=env)
        tree.mkdir(exist_ok=True)  # a commit with an empty tree checks out nothing
        try:
            os.rename(tree, final)
            log.info("snapshot of %s written to %s", sha[:12], final)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not final.is_dir():
                raise SnapshotError(f"cannot move the snapshot into {final}: {exc.strerror or exc}") from None
            # another process renamed its complete copy first: use that one
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return final
