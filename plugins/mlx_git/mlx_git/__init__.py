"""mlxcore-git: the ``git`` version manager. Only hook implementations here; the implementation (and GitPython)
loads when a launch asks for it, so ``import mlxcore`` and ``mlxcore plugins`` stay light."""

from mlxcore import hookimpl


@hookimpl
def register_version_managers(register):
    from .manager import GitVersionManager

    register(GitVersionManager)
