"""The fast paths of a large submission keep the store's guarantees: runs made by
:meth:`~mlxcore.store.batch.SubmissionBatch.create` are the runs :meth:`~mlxcore.store.RunStore.create` makes, a
failure part way leaves nothing once abandoned, ids stay unique, and the submission record's separate copy is
read, and never trusted once its file changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlxcore.errors import RunError
from mlxcore.store import RunStore, cache, ids, layout
from mlxcore.store.batch import SubmissionBatch

INFO = {"overrides": ["seed=1"], "submit_argv": ["main.py", "seed=1,2"], "submit_time": "2026-12-07T10:00:00+00:00",
        "config_identity": "abc", "sweep": "2026-12-07T10:00:00+00:00 pid 1", "sweep_command": "main.py seed=1,2"}
CONFIG = {"seed": 1, "opt": {"lr": 0.1, "name": "sgd"}, "tags": ["a", "b"]}
SETTINGS = {"logger": {"name": "files"}, "use_scheduler": False}


def files_of(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / layout.METADATA).iterdir())}


def test_batch_runs_are_the_runs_the_store_creates(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "logs")
    one, _ = store.create("SUBMITTED", INFO, {layout.CONFIG: CONFIG, layout.SETTINGS: SETTINGS, "git.txt": "abc\n"})
    two, three = SubmissionBatch(store).create([(INFO, CONFIG), (INFO, None)],
                                               {layout.SETTINGS: SETTINGS, "git.txt": "abc\n"})
    assert (two.log_id, three.log_id) == (2, 3)
    expected = {name: raw.replace(b"logs/1", b"logs/2").replace(b"log_id: 1", b"log_id: 2")
                for name, raw in files_of(one.root).items()}
    got = files_of(two.root)
    assert got.keys() == expected.keys()
    for name in got:
        if name == layout.METADATA_CACHE:  # the same copies, of the same bytes
            copies = json.loads(got[name])["files"]
            assert copies.keys() == {layout.CONFIG, layout.INFO}
            assert copies[layout.INFO]["sha1"] == cache.digest(got[layout.INFO])
            assert copies[layout.CONFIG] == json.loads(expected[name])["files"][layout.CONFIG]
        else:
            assert got[name] == expected[name], name
    assert two.info == store.open(2).read_info() and two.info["status"] == "SUBMITTED"
    assert layout.CONFIG not in files_of(three.root)
    assert os.listdir(layout.state_dir(store.parent) / layout.STAGING_DIR) == []


def test_a_failure_part_way_leaves_nothing_once_abandoned(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "logs")
    batch = SubmissionBatch(store)
    points = [(INFO, CONFIG), (INFO, CONFIG), (INFO, {"bad": object()}), (INFO, CONFIG)]
    with pytest.raises(Exception, match="represent"):
        batch.create(points, {layout.SETTINGS: SETTINGS})
    assert [run.log_id for run in batch.created] == [1, 2]  # whole runs, the third removed with its staging
    assert os.listdir(layout.state_dir(store.parent) / layout.STAGING_DIR) == []
    batch.abandon()
    assert store.ids() == []
    assert store.create("SUBMITTED", INFO)[0].log_id == 5  # reserved ids are never given again


def test_reserved_ids_skip_directories_made_by_other_tools(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    assert ids.reserve(logs, 2) == [1, 2]
    (logs / "4").mkdir()
    assert ids.reserve(logs, 3) == [3, 5, 6]
    assert ids.reserve(logs, 0) == []
    with pytest.raises(RunError, match="exists already"):
        ids.reserve_forced(logs, 4)
    assert ids.reserve_forced(logs, 9) == 9
    assert ids.reserve(logs, 1) == [10]


def test_the_submission_record_has_a_copy_of_its_own(tmp_path: Path) -> None:
    run = SubmissionBatch(RunStore(tmp_path / "logs")).create([(INFO, CONFIG)], {})[0]
    main_copy = run.paths.metadata_file(layout.METADATA_CACHE)
    before = main_copy.stat().st_ino
    run.record_submission({"name": "slurm", "job_id": "12_0", "array": True})
    assert main_copy.stat().st_ino == before  # not replaced
    copies = cache.load(run.paths.metadata)
    assert set(copies) == {layout.CONFIG, layout.INFO, layout.SCHEDULER}
    assert cache.read(run.paths.metadata, layout.SCHEDULER, copies)["job_id"] == "12_0"
    # a copy is used only for exactly the bytes it was made from: a hand edit is read from the YAML
    run.paths.scheduler.write_text("name: slurm\njob_id: '13_0'\n")
    assert cache.read(run.paths.metadata, layout.SCHEDULER, cache.load(run.paths.metadata))["job_id"] == "13_0"
