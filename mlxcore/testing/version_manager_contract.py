"""A contract test suite any version-manager plugin runs against itself (opt-in, needs pytest).

Subclass :class:`VersionManagerContract` and provide three fixtures: the manager, a project it manages (a
source tree holding ``main.py``, committed in whatever way the manager knows: a git repository for ``git``),
and how to read back, from what the manager recorded, the source of ``main.py`` that a run executes::

    class TestGit(VersionManagerContract):
        @pytest.fixture
        def version_manager(self):
            return GitVersionManager(on_dirty="record")

        @pytest.fixture
        def project(self, tmp_path):
            ...  # git init, write main.py, commit
            return tmp_path

        @pytest.fixture
        def recorded_source(self, project):
            return lambda prepared: git_show(project, prepared.record["commit"], "main.py")

Checked: the prepared script is the code the record names, on a clean tree and on a tree with uncommitted
changes (the manager may refuse such a tree instead); the prepared code does not change when the tree changes
afterwards (runs of a sweep all run one version). A manager that runs uncommitted code the record does not
name fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..errors import VersionManagerError

DIRTY_LINE = "\nUNCOMMITTED = 'a change that no commit holds'\n"


class VersionManagerContract:
    """Behaviour every version manager must show."""

    @pytest.fixture
    def version_manager(self) -> Any:
        raise NotImplementedError("override the version_manager fixture")

    @pytest.fixture
    def project(self, tmp_path: Path) -> Path:
        raise NotImplementedError("override the project fixture: a managed tree holding a committed main.py")

    @pytest.fixture
    def recorded_source(self, project: Path) -> Callable[[Any], str]:
        raise NotImplementedError("override the recorded_source fixture: PreparedCode -> the text of main.py "
                                  "that its record names")

    # -- the contract ------------------------------------------------------------------------------------
    def test_a_clean_tree_runs_the_code_its_record_names(self, version_manager: Any, project: Path,
                                                          recorded_source: Callable[[Any], str]) -> None:
        prepared = version_manager.prepare(project / "main.py", interactive=False)
        assert prepared.script.is_file() and prepared.workdir.is_dir()
        assert prepared.record, "the record names nothing: a run could not tell which code it ran"
        assert prepared.script.read_text() == (project / "main.py").read_text() == recorded_source(prepared)

    def test_the_prepared_code_stays_as_it_was_when_the_tree_changes(self, version_manager: Any,
                                                                      project: Path) -> None:
        prepared = version_manager.prepare(project / "main.py", interactive=False)
        before = prepared.script.read_text()
        (project / "main.py").write_text(before + "\nLATER = True\n")
        assert prepared.script.read_text() == before, "the prepared code follows the working tree"

    def test_uncommitted_code_is_refused_or_named_by_the_record(self, version_manager: Any, project: Path,
                                                               recorded_source: Callable[[Any], str]) -> None:
        main = project / "main.py"
        main.write_text(main.read_text() + DIRTY_LINE)
        try:
            prepared = version_manager.prepare(main, interactive=False)
        except VersionManagerError:
            return  # refused: nothing ran
        ran = prepared.script.read_text()
        assert ran == recorded_source(prepared), \
            "the run executes code that its record does not name (uncommitted changes, unrecorded)"
        if DIRTY_LINE not in ran:  # ran the last commit: the change left out must be kept with the run
            kept = "".join(prepared.files.values()) + repr(prepared.record)
            assert "UNCOMMITTED" in kept, "the uncommitted change is neither run nor recorded"
