"""Fault injection: signals at random moments, a real full disk, a frozen writer, a second writer, poison rows.

Each test tries to break one promise of the run store and the files logger, with real processes and real file
systems: run ids stay distinct and directories whole, metric files hold whole lines, a status tells the truth
about a writer that is gone, a live writer is never called dead, a refused writer changes nothing, a refused row
leaves no trace, and rows are never lost or written twice without the run saying so.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import mlxcore
from mlxcore import store
from mlxcore.errors import ConfigError
from mlxcore.loggers import metrics
from mlxcore.loggers.metrics import BadRowError
from mlxcore.store import layout
from mlxcore.testing import WaitTimeout, wait_until

APPS = Path(__file__).parent / "apps"


# -- helpers -------------------------------------------------------------------------------------------------------
def status_rows(logs: Path) -> dict[int, dict]:
    """``mlxcore status LOGS --json``, by log id."""
    out = subprocess.run([sys.executable, "-m", "mlxcore", "status", str(logs), "--json"], check=False,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return {row["log_id"]: row for row in json.loads(out.stdout)}


def read_info(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "metadata" / "info.yaml").read_text())


def stream_lines(path: Path) -> tuple[list[bytes], bytes]:
    """The newline-terminated lines of a JSON-lines file, and what follows the last newline (``b""``, or a torn
    line left by a writer killed mid-write)."""
    *lines, tail = path.read_bytes().split(b"\n")
    return lines, tail


def parse_lines(path: Path, lines: list[bytes]) -> list[dict]:
    """Every line as JSON; fails naming the first line that is not a JSON object."""
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{path} line {number} of {len(lines)} is not JSON: {line[:80]!r}")
    return rows


def stream_summary(metrics_dir: Path, stream: str) -> dict | None:
    """The stream's entry in ``metrics/.summaries.json`` (``None`` when there is none)."""
    try:
        data = json.loads((metrics_dir / layout.SUMMARIES).read_text())
    except FileNotFoundError:
        return None
    return data["streams"].get(stream)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``path`` exists; fail (showing what the process said) if it ends or times out first."""
    try:
        wait_until(lambda: path.exists() or proc.poll() is not None, timeout, what=f"{path.name} to appear")
    except WaitTimeout:
        pass  # reported below, with the process's stderr
    if not path.exists():
        stop(proc)
        pytest.fail(f"{path.name} never appeared (exit {proc.returncode}); stderr:\n{stderr_of(proc)}")


def main_thread_state(pid: int) -> str:
    """The state letter (``R``, ``S``, ``T``: stopped, ...) of the main thread of ``pid`` (Linux ``/proc``)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def stderr_of(proc: subprocess.Popen) -> str:
    return proc.stderr_path.read_text(errors="replace")


def start(command: list[str], cwd: Path, stderr_path: Path) -> subprocess.Popen:
    """A process whose stderr goes to ``stderr_path`` (a pipe nobody reads could block it), stdout discarded."""
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
    proc.stderr_path = stderr_path
    return proc


def stop(proc: subprocess.Popen) -> None:
    """Make sure ``proc`` has ended (a test failing half-way must not leave it behind)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
    proc.wait(timeout=30)


def terminate(proc: subprocess.Popen) -> None:
    """SIGTERM, as a user would stop a run; killed if it is still there after 30 s."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    finally:
        stop(proc)


def snapshot(run_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Content and modification time of every file of a run, but the heartbeat (its live writer touches it)."""
    return {str(p.relative_to(run_dir)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name != layout.HEARTBEAT}


def checkpoint_blob(step: int, size: int) -> str:
    """What ``tests/apps/fault_app.py`` stores in the checkpoint of ``step``, besides the step."""
    unit = f"{step}:"
    return unit * (size // len(unit) + 1)


@pytest.fixture
def fault_project(project):
    """The ``project`` fixture with ``tests/apps/fault_app.py`` as its ``main.py``."""
    shutil.copy(APPS / "fault_app.py", project.root / "main.py")
    project.write_config({"mode": "sleep"})
    return project


# -- 1. signals at random moments -------------------------------------------------------------------------------
STORM_SEED = 20240611
STORM_PROCESSES = 64
STORM_CONCURRENCY = 12
STORM_CONFIG = {"mode": "storm", "steps": 300, "pad": 600, "ckpt_every": 7, "ckpt_pad": 2000, "sleep": 0.002}
SIGNAL_CHOICES = [signal.SIGKILL] * 4 + [signal.SIGTERM] * 3 + [signal.SIGINT] * 3 + [None]
#: what a run may show, by the signal its last writer got (COMPLETE: the signal came after the task returned)
ALLOWED = {signal.SIGKILL: {store.DEAD, store.COMPLETE}, signal.SIGTERM: {store.INTERRUPTED, store.COMPLETE},
           signal.SIGINT: {store.INTERRUPTED, store.COMPLETE}, None: {store.COMPLETE}}
TAKEOVER_PID = re.compile(r"pid (\d+) on ")


@dataclass
class Victim:
    """One process of the storm and what happens to it."""

    index: int
    kind: str  #: ``launch`` (``main.py``, a launched task) or ``open_run`` (``main.py open_run``)
    signum: int | None  #: the signal it gets (None: it runs to its end)
    trigger: str  #: ``ready``: ``delay`` after its task started writing; ``spawn``: ``delay`` after it started
    delay: float
    resume: bool
    target: int | None = None  #: the run it resumes
    proc: subprocess.Popen | None = None
    started: float = 0.0
    kill_at: float | None = None
    sent: int | None = None  #: the signal actually sent while it ran
    sent_at: float = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return stderr_of(self.proc)


def plan_storm(rng: random.Random) -> list[Victim]:
    """The processes of the storm. SIGTERM and SIGINT come once the task writes (a run's story starts there);
    SIGKILL also comes at any moment after start: while importing, allocating an id, staging, taking over."""
    plans = [Victim(0, "launch", signal.SIGKILL, "ready", 0.03, resume=False)]  # its run stays DEAD, for the end
    for index in range(1, STORM_PROCESSES):
        signum = rng.choice(SIGNAL_CHOICES)
        trigger = "spawn" if signum == signal.SIGKILL and rng.random() < 0.4 else "ready"
        delay = rng.uniform(0.0, 0.5) if trigger == "spawn" else rng.uniform(0.0, 0.08)
        plans.append(Victim(index, rng.choice(["launch", "open_run"]), signum, trigger, delay,
                            resume=index >= 4 and rng.random() < 0.35))
    return plans


class Storm:
    """Runs the planned processes on one logs directory, at most STORM_CONCURRENCY at a time, and signals them."""

    def __init__(self, project, rng: random.Random, journal: Path, out: Path) -> None:
        self.project = project
        self.rng = rng
        self.journal = journal
        self.out = out
        self.protected: set[int] = set()  #: runs no process of the storm may resume
        self.live: list[Victim] = []
        self.done: list[Victim] = []

    def journaled(self, victim: Victim) -> int | None:
        """The run ``victim`` writes, once its task has started (``fault_app.py`` writes ``<journal>/<pid>``)."""
        try:
            return int((self.journal / str(victim.pid)).read_text())
        except FileNotFoundError:
            return None

    def choose_target(self) -> int | None:
        """A run to resume: not protected, not COMPLETE and not one that a process which will not be signalled
        writes or will write (a resume that ends at once would get its signal while closing the run, which
        ``open_run``, unlike a launch, does not hold back: a known gap this storm does not aim at)."""
        busy = {v.target for v in self.live if v.signum is None} | {
            self.journaled(v) for v in self.live if v.signum is None}
        candidates = []
        for log_id in self.project.run_ids():
            if log_id in self.protected or log_id in busy:
                continue
            try:
                if read_info(self.project.logs / str(log_id)).get("status") == store.COMPLETE:
                    continue
            except (OSError, yaml.YAMLError):
                continue
            candidates.append(log_id)
        return self.rng.choice(candidates) if candidates else None

    def spawn(self, victim: Victim) -> None:
        if victim.resume:
            victim.target = self.choose_target()
        if victim.kind == "launch":
            args = [] if victim.target is None else [f"+mlx.logger.forced_log_id={victim.target}"]
            command = self.project.command(*args)
        else:
            args = [] if victim.target is None else [str(victim.target)]
            command = [sys.executable, str(self.project.root / "main.py"), "open_run", str(self.project.logs), *args]
        victim.proc = start(command, self.project.root, self.out / f"{victim.index}.stderr")
        victim.started = time.monotonic()
        self.live.append(victim)

    def tick(self) -> None:
        now = time.monotonic()
        for victim in list(self.live):
            if victim.proc.poll() is not None:
                self.live.remove(victim)
                self.done.append(victim)
                continue
            if victim.signum is not None and victim.kill_at is None:
                if victim.trigger == "spawn":
                    victim.kill_at = victim.started + victim.delay
                elif self.journaled(victim) is not None:
                    victim.kill_at = now + victim.delay
            if victim.kill_at is not None and victim.sent is None and now >= victim.kill_at:
                victim.proc.send_signal(victim.signum)  # sends nothing to a process that has just ended
                if victim.proc.returncode is None:
                    victim.sent, victim.sent_at = victim.signum, now
            hung = (victim.sent is not None and victim.sent != signal.SIGKILL and now - victim.sent_at > 20) or (
                now - victim.started > 40)
            if hung:
                victim.proc.kill()
                victim.proc.wait()
                pytest.fail(f"process {victim.index} ({victim.kind}, {victim.sent}) did not end:\n{victim.stderr()}")

    def run(self, plans: list[Victim]) -> None:
        """The storm's event loop. Its 2 ms sleeps are its clock, not a wait: each tick sends the signals due,
        which must land within milliseconds of their planned moment (a growing poll interval would not)."""
        first, pending = plans[0], deque(plans[1:])
        self.spawn(first)  # alone: its run is known before anyone may pick it
        while self.live:
            self.tick()
            time.sleep(0.002)
        log_id = self.journaled(first)
        assert log_id is not None, first.stderr()
        self.protected.add(log_id)
        while pending or self.live:
            while pending and len(self.live) < STORM_CONCURRENCY:
                self.spawn(pending.popleft())
            self.tick()
            time.sleep(0.002)


def check_storm_stream(path: Path, may_be_torn: bool, pids: set[int], interrupted: int, last_interrupted: bool
                       ) -> list[dict]:
    """The rows of a storm run's ``train`` stream, checked: whole JSON lines (a torn last line only when a writer
    was SIGKILLed), each writer's rows contiguous and consecutive (none lost in the middle, none twice), and the
    summaries, when they describe this file, counting its rows.

    A summary that describes the file (its size matches) must count exactly its rows: an interrupt between
    buffering a row and counting it makes the stream unsummarised instead
    (:func:`test_a_row_buffered_when_an_interrupt_lands_is_counted_by_the_summary`)."""
    lines, tail = stream_lines(path)
    assert not tail or may_be_torn, f"{path} ends with a torn line and no writer was SIGKILLed: {tail[:60]!r}"
    rows = parse_lines(path, lines)
    writers: list[tuple[int, list[int]]] = []
    for row in rows:
        assert set(row) == {"step", "pid", "w"} and row["w"] == "x" * STORM_CONFIG["pad"], (path, row["step"])
        if not writers or writers[-1][0] != row["pid"]:
            writers.append((row["pid"], []))
        writers[-1][1].append(row["step"])
    order = [pid for pid, _ in writers]
    assert len(order) == len(set(order)), f"{path}: the rows of one writer are not contiguous: {order}"
    assert set(order) <= pids, f"{path}: rows of unknown processes {set(order) - pids}"
    for pid, steps in writers:
        assert steps == list(range(steps[0], steps[0] + len(steps))), f"{path}: rows of pid {pid} lost or doubled"
    entry = stream_summary(path.parent, "train")
    if entry is not None and entry["bytes"] == path.stat().st_size:
        counted, last = entry["keys"]["step"][1:3]
        why = f"{path}: the summary of {len(rows)} rows counts {counted}, last step {last}"
        assert counted == len(rows), why
        assert last == rows[-1]["step"], why
    return rows


def writers_of(run_dir: Path, info: dict, journal: dict[int, int]) -> set[int]:
    """Every pid known to have written the run: from the journal, its info and its takeover history."""
    log_id = int(run_dir.name)
    pids = {pid for pid, written in journal.items() if written == log_id} | {info["pid"]}
    for event in info.get("history", []):
        if event.get("event") == "takeover":
            pids.add(int(TAKEOVER_PID.search(event["previous_writer"]).group(1)))
    return pids


def check_storm_run(run_dir: Path, shown: str, by_pid: dict[int, Victim], journal: dict[int, int]) -> dict:
    """One run after the storm: whole metadata and metric files, a status that tells the truth about its last
    writer, a checkpoint that is some value the task saved. Returns its info."""
    log_id = int(run_dir.name)
    for path in (run_dir / "metadata").glob("*.yaml"):
        assert isinstance(yaml.safe_load(path.read_text()), dict), path
    json.loads((run_dir / "metadata" / layout.METADATA_CACHE).read_text())
    info = read_info(run_dir)
    assert info["log_id"] == log_id and Path(info["log_dir"]).name == str(log_id)
    assert info["pid"] in by_pid, f"run {log_id} was last written by an unknown process {info['pid']}"
    last = by_pid[info["pid"]]
    signals = [by_pid[pid].sent for pid in writers_of(run_dir, info, journal) if pid in by_pid]
    stream = run_dir / "metrics" / "train.json"
    train = check_storm_stream(stream, signal.SIGKILL in signals, set(by_pid),
                               interrupted=sum(s in (signal.SIGINT, signal.SIGTERM) for s in signals),
                               last_interrupted=last.sent in (signal.SIGINT, signal.SIGTERM)) if stream.exists() else []

    why = f"run {log_id}: shows {shown}, recorded {info['status']}; its last writer ({last.kind}) got {last.sent}"
    assert shown != store.RUNNING, why  # every writer is gone
    assert shown in ALLOWED[last.sent], why
    if shown == store.COMPLETE:
        assert train and train[-1]["step"] == STORM_CONFIG["steps"] - 1, why  # the task did reach its end
    if shown == store.INTERRUPTED and last.kind == "launch":
        assert info["signal"] == signal.Signals(last.sent).name, why
    if shown == store.DEAD:
        assert info["status"] == store.RUNNING, why

    checkpoint = run_dir / "checkpoints" / "ckpt.pickle"
    if checkpoint.exists():
        with open(checkpoint, "rb") as handle:
            value = pickle.load(handle)
        assert value == {"step": value["step"], "blob": checkpoint_blob(value["step"], STORM_CONFIG["ckpt_pad"])}
    visible = {p.name for p in (run_dir / "checkpoints").glob("*") if not p.name.startswith(".")}
    assert visible <= {"ckpt.pickle"}, visible
    return info


def plant_abandoned_staging(logs: Path, dead_pid: int) -> Path:
    """What a creator killed before its rename leaves: a staging directory with a whole run inside."""
    staging = logs / layout.STATE_DIR / layout.STAGING_DIR / f"{socket.gethostname()}.{dead_pid}.0badc0de"
    (staging / "metadata").mkdir(parents=True)
    (staging / "metrics").mkdir()
    store.write_yaml(staging / "metadata" / "info.yaml", {"log_id": 10**6, "status": store.RUNNING, "pid": dead_pid})
    (staging / "metrics" / "train.json").write_text('{"step": 0}\n')
    return staging


def test_a_storm_of_signals_leaves_whole_files_and_truthful_statuses(fault_project, tmp_path):
    project = fault_project
    journal_dir, out = tmp_path / "journal", tmp_path / "stderr"
    journal_dir.mkdir()
    out.mkdir()
    config = {**STORM_CONFIG, "journal": str(journal_dir)}
    project.write_config(config)
    project.write_config({"logger": {"flush_interval": 0.01}}, "mlx.yaml")
    rng = random.Random(STORM_SEED)
    plans = plan_storm(rng)
    storm = Storm(project, rng, journal_dir, out)
    try:
        storm.run(plans)
    finally:
        for victim in storm.live:
            stop(victim.proc)
    assert len(storm.done) == STORM_PROCESSES
    by_pid = {v.pid: v for v in storm.done}
    journal = {int(p.name): int(p.read_text()) for p in journal_dir.iterdir() if p.name.isdigit()}

    # processes nobody signalled ended well, or were refused because another process wrote their run
    for victim in storm.done:
        if victim.sent is None:
            code, err = victim.proc.returncode, victim.stderr()
            refused = "being written by" in err and (
                code == 2 if victim.kind == "launch" else code == 1 and "RunBusyError" in err)
            assert code == 0 or refused, f"process {victim.index} ({victim.kind}) exit {code}:\n{err}"

    # ids: every entry a run directory named by its id, and runs created by different processes never shared
    names = {p.name for p in project.logs.iterdir()} - {layout.STATE_DIR}
    assert all(layout.is_run_name(n) and (project.logs / n).is_dir() for n in names), sorted(names)
    ids = sorted(int(n) for n in names)
    created = [journal[v.pid] for v in storm.done if v.target is None and v.pid in journal]
    assert len(created) == len(set(created)), f"two processes created the same run: {sorted(created)}"
    protected = min(storm.protected)
    staging = plant_abandoned_staging(project.logs, plans[0].pid)

    rows = status_rows(project.logs)
    assert sorted(rows) == ids  # staging directories are no runs
    shown = {log_id: rows[log_id]["status"] for log_id in ids}
    assert {store.DEAD, store.INTERRUPTED} <= set(shown.values()) and shown[protected] == store.DEAD
    for log_id in ids:
        check_storm_run(project.logs / str(log_id), shown[log_id], by_pid, journal)
    reader = mlxcore.Reader(project.logs)
    try:  # torn lines skipped, staging directories ignored
        assert sorted(r["log_id"] for r in reader.filter(result_format="records", columns=["log_id"])) == ids
    finally:
        reader.close()

    # a later resume takes a dead run over and completes it: a launch and, when there is another, a script
    others = [log_id for log_id in ids if shown[log_id] == store.DEAD and log_id != protected][:1]
    resumes = [start(project.command(f"+mlx.logger.forced_log_id={protected}"), project.root, out / "takeover.stderr")]
    for log_id in others:
        command = [sys.executable, str(project.root / "main.py"), "open_run", str(project.logs), str(log_id)]
        resumes.append(start(command, project.root, out / f"takeover-{log_id}.stderr"))
    for proc in resumes:
        assert proc.wait(timeout=60) == 0, stderr_of(proc)
    rows = status_rows(project.logs)
    for log_id, proc in zip([protected, *others], resumes):
        info = read_info(project.logs / str(log_id))
        assert info["status"] == rows[log_id]["status"] == store.COMPLETE and info["pid"] == proc.pid
        takeovers = [e for e in info["history"] if e.get("event") == "takeover"]
        assert takeovers, info["history"]
        previous = int(TAKEOVER_PID.search(takeovers[-1]["previous_writer"]).group(1))
        assert by_pid[previous].sent == signal.SIGKILL and (log_id != protected or previous == plans[0].pid)
        by_pid[proc.pid] = Victim(-1, "takeover", None, "", 0.0, resume=True, proc=proc)
        check_storm_run(project.logs / str(log_id), store.COMPLETE, by_pid, journal)

    # the next creation removes the staging directories of creators that are gone, and takes a new id
    with mlxcore.open_run(project.logs, config=config) as run:
        assert run.log_id > max(ids)
    assert not staging.exists()
    assert status_rows(project.logs)[run.log_id]["status"] == store.COMPLETE


# -- 2. a real full disk ------------------------------------------------------------------------------------------
DISK_ROWS = 6000


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs mounted for the test (root only; under CI=true its absence fails the test), unmounted after."""
    in_ci = os.environ.get("CI") == "true"

    def unavailable(reason: str) -> None:
        if in_ci:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)

    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        unavailable("no mount and umount commands")
    mount_point = tmp_path / "small disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                             check=False, capture_output=True, text=True)
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill_disk(path: Path) -> None:
    """Write ``path`` until its file system has not one byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 16, 1 << 12, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    assert os.statvfs(path.parent).f_bavail == 0


def start_filling_task(project, disk: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """The ``fill`` task, its logs on ``disk``: it logs the first half of its rows, then waits for the test."""
    flags = tmp_path / "flags"
    flags.mkdir()
    project.write_config({"mode": "fill", "rows": DISK_ROWS, "flags": str(flags)})
    logs = disk / "logs"
    proc = start(project.command(f"+mlx.logger.parent_log_dir={logs}", "+mlx.logger.flush_interval=0.05"),
                 project.root, tmp_path / "fill.stderr")
    wait_for(flags / "half", proc)
    return proc, logs, flags


def check_whole_rows(path: Path) -> list[int]:
    """The steps of a ``fill`` stream: whole lines only, in order from 0, each once."""
    lines, tail = stream_lines(path)
    assert tail == b"", f"{path} ends with a torn line: {tail[:60]!r}"
    steps = [row["step"] for row in parse_lines(path, lines)]
    assert steps == list(range(len(steps))), f"{path}: rows out of order, lost or doubled"
    return steps


def test_a_full_disk_that_frees_up_loses_no_row(fault_project, small_disk, tmp_path):
    proc, logs, flags = start_filling_task(fault_project, small_disk, tmp_path)
    filler = small_disk / "filler"
    try:
        fill_disk(filler)
        (flags / "go").touch()
        wait_for(flags / "logged", proc)  # every row logged, the second half refused by the disk for a while
        stream = logs / "1" / "metrics" / "train.json"
        lines, _ = stream_lines(stream)  # a flush may be cutting a torn tail back right now: whole lines only
        assert len(lines) < DISK_ROWS
        assert [row["step"] for row in parse_lines(stream, lines)] == list(range(len(lines)))
        filler.unlink()
        (flags / "release").touch()
        assert proc.wait(timeout=60) == 0, stderr_of(proc)
    finally:
        stop(proc)
    assert "cannot write metric rows" in stderr_of(proc)  # the disk was full indeed
    assert read_info(logs / "1")["status"] == store.COMPLETE
    assert status_rows(logs)[1]["status"] == store.COMPLETE
    assert check_whole_rows(stream) == list(range(DISK_ROWS))
    entry = stream_summary(stream.parent, "train")
    assert entry["bytes"] == stream.stat().st_size and entry["keys"]["step"][1] == DISK_ROWS


def test_a_disk_that_stays_full_fails_the_run_truthfully(fault_project, small_disk, tmp_path):
    proc, logs, flags = start_filling_task(fault_project, small_disk, tmp_path)
    try:
        fill_disk(small_disk / "filler")  # after the run started: its info may not be writable any more
        (flags / "go").touch()
        wait_for(flags / "logged", proc)
        (flags / "release").touch()
        code = proc.wait(timeout=60)
    finally:
        stop(proc)
    err = stderr_of(proc)
    assert code != 0, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert all(line.startswith("mlxcore: ") for line in lines), err
    assert len([line for line in lines if line.startswith("mlxcore: error: ")]) == 1, err
    info = read_info(logs / "1")
    assert info["status"] in (store.RUNNING, store.FAILED)  # RUNNING: its final status could not be written
    if info["status"] == store.FAILED:
        assert "could not be written" in info["error"]["message"] or "cannot record" in info["error"]["message"]
    assert status_rows(logs)[1]["status"] in (store.DEAD, store.FAILED)
    stream = logs / "1" / "metrics" / "train.json"
    steps = check_whole_rows(stream)
    assert DISK_ROWS // 2 <= len(steps) < DISK_ROWS
    entry = stream_summary(stream.parent, "train")
    assert entry is None or (entry["bytes"] == stream.stat().st_size and entry["keys"]["step"][1] == len(steps))


# -- 3. and 4. a live writer: never judged dead, never joined by a second one ---------------------------------------
def start_sleeper(project, *overrides: str) -> subprocess.Popen:
    """The ``sleep`` task: it logs 5 rows, prints ``ready`` and sleeps until stopped."""
    proc = project.start("mode=sleep", *overrides)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        stop(proc)
        pytest.fail(f"the task did not start: {line}{proc.stderr.read()}")
    return proc


def test_a_live_run_with_a_long_flush_interval_and_an_old_heartbeat_is_running(fault_project):
    proc = start_sleeper(fault_project, "+mlx.logger.flush_interval=120", "+mlx.logger.heartbeat_interval=1")
    run_dir = fault_project.logs / "1"
    beat = run_dir / "metadata" / layout.HEARTBEAT
    try:
        # frozen, its heartbeat thread cannot touch the file again: the status below sees an hour-old heartbeat
        os.kill(proc.pid, signal.SIGSTOP)
        old = time.time() - 3600
        os.utime(beat, (old, old))
        assert not store.lease.heartbeat_fresh(layout.RunPaths(run_dir), 1.0)  # stale, judged from another host
        row = status_rows(fault_project.logs)[1]
        assert beat.stat().st_mtime == pytest.approx(old, abs=1)
        assert row["status"] == store.RUNNING, row
        assert (run_dir / "metrics" / "train.json").read_bytes() == b""  # its rows still wait in the buffer
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        try:  # a SIGTERM sent before the main thread is back in its sleep may go to another thread, never waking it
            wait_until(lambda: proc.poll() is not None or main_thread_state(proc.pid) == "S", timeout=10,
                       interval=0.005, what="the resumed task's main thread to sleep again")
        finally:
            terminate(proc)
    assert fault_project.info(1)["status"] == store.INTERRUPTED


def test_a_second_writer_is_refused_and_changes_nothing(fault_project):
    proc = start_sleeper(fault_project, "+mlx.logger.flush_interval=0.05")
    run_dir = fault_project.logs / "1"
    try:
        stream = run_dir / "metrics" / "train.json"
        wait_until(lambda: stream.read_bytes().count(b"\n") >= 5, timeout=10, what="the 5 rows flushed to train.json")
        before = snapshot(run_dir)
        assert {"metadata/info.yaml", "metadata/config.yaml", "metrics/train.json"} <= set(before)

        second = fault_project.run("mode=sleep", "+mlx.logger.forced_log_id=1", timeout=30)
        lines = second.stderr.splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert "run 1 " in lines[0] and "being written by" in lines[0] and f"pid {proc.pid} " in lines[0]
        assert snapshot(run_dir) == before

        with pytest.raises(store.RunBusyError, match=f"run 1 is being written by pid {proc.pid} "):
            mlxcore.open_run(fault_project.logs, log_id=1)
        assert snapshot(run_dir) == before
        assert status_rows(fault_project.logs)[1]["status"] == store.RUNNING
    finally:
        terminate(proc)
    assert fault_project.info(1)["status"] == store.INTERRUPTED  # the first writer kept the run to its end


# -- 5. poison inputs ---------------------------------------------------------------------------------------------
POISON_ROWS = [
    ({}, BadRowError, "the row is empty"),
    ({"": 1.0}, BadRowError, "a key is the empty string"),
    ({"a": "\ud800"}, BadRowError, "the value of key 'a' is not valid Unicode"),
    ({"\ud800": 1}, BadRowError, re.escape(r"a key ('\ud800') is not valid Unicode")),
    ({"a": object()}, TypeError, "value of key 'a' cannot be written as JSON"),
]


def test_poison_rows_names_and_configs_are_refused_without_a_trace(tmp_path):
    logs = tmp_path / "logs"
    with mlxcore.open_run(logs, config={"lr": 0.1}, mlx={"logger": {"flush_interval": 120}}) as run:
        logger = run.logger
        metrics_dir = run.log_dir / "metrics"
        stream = metrics_dir / "train.json"
        logger.log_metrics({"step": 0, "loss": 1.0}, log_name="train")
        logger.flush()
        before = stream.read_bytes()
        assert before
        for index, (row, error, message) in enumerate(POISON_ROWS):
            with pytest.raises(error, match=message):
                logger.log_metrics(row, log_name="train")
            with pytest.raises(error, match=message):  # the first row of a new stream
                logger.log_metrics(row, log_name=f"fresh{index}")
        with pytest.raises(ConfigError, match="'Train' differs from this run's stream 'train' only by case"):
            logger.log_metrics({"step": 1}, log_name="Train")
        with pytest.raises(ConfigError, match=f"invalid log_name '{'n' * 40}'... \\(300 characters\\)"):
            logger.log_metrics({"step": 1}, log_name="n" * 300)
        logger.flush()
        assert stream.read_bytes() == before
        assert sorted(p.name for p in metrics_dir.iterdir()) == ["train.json"]  # no file for a refused stream
        logger.log_metrics({"step": 1, "loss": 0.5}, log_name="train")
    assert run.status == store.COMPLETE
    assert stream.read_bytes() == before + b'{"step": 1, "loss": 0.5}\n'
    assert stream_summary(metrics_dir, "train")["keys"]["step"][1] == 2  # refused rows are not counted

    with pytest.raises(ConfigError, match=r"config\.n and config\.N differ only by case"):
        mlxcore.open_run(logs, config={"n": 1, "N": 2})
    assert sorted(p.name for p in logs.iterdir()) == [layout.STATE_DIR, "1"]
    assert not list((logs / layout.STATE_DIR / layout.STAGING_DIR).iterdir())

    reader = mlxcore.Reader(logs)
    try:
        runs = reader.filter(result_format="records")
        assert [r["log_id"] for r in runs] == [1]
        assert runs[0]["train.step.count"] == 2 and runs[0]["config.lr"] == 0.1
    finally:
        reader.close()


# -- bugs the tests above found (fixed), each reproduced without timing luck --------------------------------------
def test_a_resume_after_a_torn_last_line_keeps_its_rows(tmp_path):
    with mlxcore.open_run(tmp_path, config={"a": 1}) as run:
        run.logger.log_metrics({"step": 0}, log_name="train")
    stream = run.log_dir / "metrics" / "train.json"
    with open(stream, "ab") as handle:
        handle.write(b'{"step": 1, "w": "xx')  # what a writer killed in the middle of a write leaves behind
    with mlxcore.open_run(tmp_path, config={"a": 1}, log_id=1) as run:
        run.logger.log_metrics({"step": 1}, log_name="train")
        run.logger.log_metrics({"step": 2}, log_name="train")
    readable = []
    for line in stream_lines(stream)[0]:
        try:
            readable.append(json.loads(line)["step"])
        except ValueError:
            pass  # the torn line itself may stay, as a line of its own
    assert readable == [0, 1, 2]


class _WriteThenInterrupt:
    """``os`` for :mod:`mlxcore.loggers.metrics`, whose first write of a full buffer completes and is followed by
    a KeyboardInterrupt: what a SIGINT (or SIGTERM, in a launch) arriving during that ``os.write`` does, since
    Python runs the handler right after the system call returns."""

    def __init__(self) -> None:
        self.fired = False

    def __getattr__(self, name: str):
        return getattr(os, name)

    def write(self, fd: int, data: bytes) -> int:
        written = os.write(fd, data)
        if len(data) >= metrics.FLUSH_BYTES and not self.fired:
            self.fired = True
            raise KeyboardInterrupt
        return written


def test_an_interrupt_during_a_write_does_not_write_rows_twice(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "os", _WriteThenInterrupt())
    settings = {"logger": {"flush_interval": 120}}  # the main thread writes each time the buffer is full
    with pytest.raises(KeyboardInterrupt), mlxcore.open_run(tmp_path, config={}, mlx=settings) as run:
        for step in range(1000):
            run.logger.log_metrics({"step": step, "w": "x" * 200}, log_name="train")
    assert read_info(run.log_dir)["status"] == store.INTERRUPTED
    stream = run.log_dir / "metrics" / "train.json"
    steps = [row["step"] for row in parse_lines(stream, stream_lines(stream)[0])]
    assert steps == list(range(len(steps)))


def test_a_row_buffered_when_an_interrupt_lands_is_counted_by_the_summary(tmp_path, monkeypatch):
    append = metrics.MetricStream.append

    def append_then_interrupt(stream, line):
        append(stream, line)
        if line.startswith('{"step": 3'):
            raise KeyboardInterrupt  # the handler of a SIGINT that arrived during append()

    monkeypatch.setattr(metrics.MetricStream, "append", append_then_interrupt)
    with pytest.raises(KeyboardInterrupt), mlxcore.open_run(tmp_path, config={}) as run:
        for step in range(5):
            run.logger.log_metrics({"step": step}, log_name="train")
    stream = run.log_dir / "metrics" / "train.json"
    assert stream.read_text().splitlines() == [f'{{"step": {step}}}' for step in range(4)]
    entry = stream_summary(stream.parent, "train")
    if entry is not None and entry["bytes"] == stream.stat().st_size:  # the reader trusts it: it must be right
        assert entry["keys"]["step"][1:3] == [4, 3]
    reader = mlxcore.Reader(tmp_path)
    try:
        assert reader.filter(columns=["train.step.count", "train.step.last"], result_format="records") == [
            {"train.step.count": 4, "train.step.last": 3}]
    finally:
        reader.close()
