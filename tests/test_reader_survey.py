"""A reader reopened in the same process skips the survey of every run when the store's change stamp and the logs
directory say nothing changed (mlxcore.reader.survey, mlxcore.store.changes): every change made through the store
must still show at the next reopen, and a hand edit shows after a rebuild or after FULL_SURVEY_EVERY seconds.

The catalog's racy window (changes younger than it are not trusted) is cut to RACY seconds here, so that a test
need not wait two seconds before each reopen; each step waits a little longer than it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlxcore
from mlxcore import store
from mlxcore.reader import scan, survey
from mlxcore.reader.engine import DuckDBReader
from mlxcore.reader.synthetic import write_run
from mlxcore.store.files import write_yaml

RACY = 0.02


def settle() -> None:
    time.sleep(2.5 * RACY)


def reopen(logs: Path, **options) -> DuckDBReader:
    """A reader as a warm reopen makes it, with the short racy window."""
    reader = DuckDBReader(logs, refresh=False)
    reader.catalog.racy_ns = int(RACY * 1e9)
    reader.refresh(**options)
    return reader


def statuses(logs: Path) -> dict[int, str]:
    return {row["log_id"]: row["status"] for row in reopen(logs).filter(result_format="records")}


def on_disk(logs: Path) -> dict[int, str]:
    """The oracle: each run's status to show, from its files as they are now."""
    runs = store.RunStore(logs)
    return {log_id: store.effective_status(runs.open(log_id).read_info(), runs.run_dir(log_id))
            for log_id in runs.ids()}


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    for seed in range(3):
        write_run(root, {"seed": seed}, {"train": [{"loss": 1.0 / (seed + 1)}]})
    settle()
    return root


@pytest.fixture
def no_survey(monkeypatch: pytest.MonkeyPatch):
    """Makes a full survey fail: what runs must have taken the shortcut."""
    def refuse(root: Path) -> dict:
        raise AssertionError("surveyed every run")

    def allow() -> None:
        monkeypatch.setattr(scan, "survey", real)

    real = scan.survey
    monkeypatch.setattr(scan, "survey", refuse)
    return allow


def test_a_warm_reopen_with_nothing_changed_stats_no_finished_run(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = statuses(logs)
    real = scan.survey
    monkeypatch.setattr(scan, "survey", lambda root: pytest.fail("surveyed every run"))
    assert statuses(logs) == first == {1: store.COMPLETE, 2: store.COMPLETE, 3: store.COMPLETE}
    monkeypatch.setattr(survey, "FULL_SURVEY_EVERY", 0.0)  # the age bound: a full survey again
    monkeypatch.setattr(scan, "survey", real)
    assert statuses(logs) == first


def test_without_the_change_stamp_every_reopen_surveys(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Logs written by an older mlxcore have no stamp: nothing can vouch for them."""
    statuses(logs)
    Path(store.changes.stamp_path(logs)).unlink()
    settle()
    calls = []
    real = scan.survey
    monkeypatch.setattr(scan, "survey", lambda root: calls.append(root) or real(root))
    statuses(logs)
    statuses(logs)
    assert len(calls) == 2


def _new_run(logs: Path) -> None:
    write_run(logs, {"seed": 9})


def _remove_run(logs: Path) -> None:
    shutil.rmtree(logs / "2")


def _resume_run(logs: Path) -> None:
    mlxcore.open_run(logs, {"seed": 0}, log_id=1)  # RUNNING, its process alive: this one


def _fail_again(logs: Path) -> None:
    session = mlxcore.open_run(logs, {"seed": 1}, log_id=2)
    session.finish(store.FAILED)


def _rewrite_info(logs: Path) -> None:
    store.RunStore(logs).open(3).update_info(note="changed")


def _sent_again(logs: Path) -> None:
    store.RunStore(logs).open(3).set_status(store.SUBMITTED)


CHANGES = {
    "a new run": (_new_run, {1: store.COMPLETE, 2: store.COMPLETE, 3: store.COMPLETE, 4: store.COMPLETE}),
    "a run removed": (_remove_run, {1: store.COMPLETE, 3: store.COMPLETE}),
    "a finished run resumed": (_resume_run, {1: store.RUNNING, 2: store.COMPLETE, 3: store.COMPLETE}),
    "a finished run run again and failed": (_fail_again, {1: store.COMPLETE, 2: store.FAILED, 3: store.COMPLETE}),
    "its info rewritten": (_rewrite_info, {1: store.COMPLETE, 2: store.COMPLETE, 3: store.COMPLETE}),
    "sent again": (_sent_again, {1: store.COMPLETE, 2: store.COMPLETE, 3: store.SUBMITTED}),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_through_the_store_shows_at_the_next_warm_reopen(logs: Path, change: str) -> None:
    make, expected = CHANGES[change]
    statuses(logs)
    statuses(logs)  # warm: the shortcut is in use
    make(logs)
    assert statuses(logs) == expected  # at once, even within the racy window
    settle()
    assert statuses(logs) == expected
    if change == "its info rewritten":
        assert reopen(logs).filter("info.note == 'changed'", result_format="records")[0]["log_id"] == 3


def test_rows_of_a_running_run_show_without_a_metadata_write(logs: Path) -> None:
    session = mlxcore.open_run(logs, {"seed": 7})
    session.logger.log_metrics({"loss": 1.0}, log_name="train")
    session.logger.flush()
    settle()
    reader = reopen(logs)
    assert reopen(logs).metrics("train", f"log_id == {session.log_id}")["loss"].tolist() == [1.0]
    for loss in (0.5, 0.25):
        session.logger.log_metrics({"loss": loss}, log_name="train")
        session.logger.flush()
        settle()
        reader = reopen(logs)
        assert reader.metrics("train", f"log_id == {session.log_id}")["loss"].tolist()[-1] == loss
    session.finish(store.COMPLETE)
    assert statuses(logs)[session.log_id] == store.COMPLETE


def test_a_hand_edit_shows_after_a_rebuild_or_the_age_bound(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not through the store (documented): the shortcut cannot see it; --rebuild and the age bound do."""
    statuses(logs)
    statuses(logs)
    run = store.RunStore(logs).open(2)
    write_yaml(run.paths.info, {**run.read_info(), "status": store.FAILED})
    (run.paths.metadata / ".cache.json").unlink(missing_ok=True)
    settle()
    assert statuses(logs)[2] == store.COMPLETE  # stale, as documented
    rebuilt = reopen(logs, rebuild=True)
    assert rebuilt.last_refresh is not None and rebuilt.last_refresh.rebuilt
    assert statuses(logs)[2] == store.FAILED


OPS = st.lists(st.sampled_from(["new", "remove", "resume", "finish", "fail", "note", "resubmit", "reopen"]),
               min_size=1, max_size=8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_warm_reopens_agree_with_the_store_whatever_it_does(tmp_path_factory: pytest.TempPathFactory,
                                                           ops: list[str]) -> None:
    logs = tmp_path_factory.mktemp("ops") / "logs"
    write_run(logs, {"seed": 0})
    settle()
    sessions: dict[int, mlxcore.RunSession] = {}
    try:
        assert statuses(logs) == on_disk(logs)
        for n, op in enumerate(ops):
            ids = store.RunStore(logs).ids()
            finished = [i for i in ids if i not in sessions and on_disk(logs)[i] != store.RUNNING]
            if op == "new":
                write_run(logs, {"seed": n + 1})
            elif op == "remove" and finished:
                shutil.rmtree(logs / str(finished[-1]))
            elif op == "resume" and finished:
                log_id = finished[0]
                config = store.RunStore(logs).open(log_id).read_config()
                sessions[log_id] = mlxcore.open_run(logs, config, log_id=log_id)
            elif op in ("finish", "fail") and sessions:
                log_id, session = sessions.popitem()
                session.finish(store.COMPLETE if op == "finish" else store.FAILED)
            elif op == "note" and ids:
                store.RunStore(logs).open(ids[-1]).update_info(note=n)
            elif op == "resubmit" and finished:
                store.RunStore(logs).open(finished[-1]).set_status(store.SUBMITTED)
            if n % 2:
                settle()
            assert statuses(logs) == on_disk(logs), (n, op)
    finally:
        for session in sessions.values():
            session.finish(store.COMPLETE)


def test_a_lingering_attach_never_answers_from_a_catalog_another_process_replaced(logs, monkeypatch):
    """A read-only attach stays 0.1 s after its last use (30 s here); a lock on the old file does not stop
    another process from rebuilding the catalog into a new file: the next call must read the new one."""
    import subprocess
    import sys

    from mlxcore.reader import connection

    monkeypatch.setattr(connection, "LINGER", 30.0)
    reader = reopen(logs)
    assert len(reader.filter(result_format="records")) == 3
    write_run(logs, {"seed": 9})
    rebuild = f"from mlxcore.reader.engine import DuckDBReader; DuckDBReader({str(logs)!r}, rebuild=True)"
    subprocess.run([sys.executable, "-c", rebuild], check=True, timeout=120)
    assert [row["log_id"] for row in reader.filter(result_format="records")] == [1, 2, 3, 4]
