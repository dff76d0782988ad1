"""The run directory's layout: every file and directory name inside a logs directory, in one place.

This is a versioned format (``FORMAT``; each run records the version it was written with in its info, key
``format``). Version 2, described in ``docs/run-format.md``::

    <logs>/.mlxcore/last_id           the id counter (see :mod:`mlxcore.store.ids`)
    <logs>/.mlxcore/staging/          runs being created (moved into place whole, by one rename)
    <logs>/.mlxcore/submissions/A-B/  an array submission: job.sh, jobs.args, tasks/<index> -> run directory
    <logs>/<id>/metadata/info.yaml    status, times, host, pid, argv, overrides, error, history, format
    <logs>/<id>/metadata/config.yaml  the resolved user config (never changed silently once recorded)
    <logs>/<id>/metadata/mlx.yaml     the framework settings in force
    <logs>/<id>/metadata/scheduler.yaml   the submission: scheduler, job id, script, submit time
    <logs>/<id>/metadata/lease        the writing process (host, pid, process start time); empty when none
    <logs>/<id>/metadata/heartbeat    touched every heartbeat_interval while a writer holds the lease
    <logs>/<id>/metadata/cancel_requested, job_ids, .cache.json (a JSON copy of the YAML, for readers)
    <logs>/<id>/metadata/.cache.scheduler.json    the copy of scheduler.yaml (see :mod:`mlxcore.store.cache`)
    <logs>/<id>/metadata/preempted    exists while the status is PREEMPTED (read by job scripts, not YAML)
    <logs>/<id>/metrics/<stream>.json JSON lines; metrics/.summaries.json (per-stream summaries, for readers)
    <logs>/<id>/artifacts/<format>/<name>, checkpoints/<name>.<format>
    <logs>/<id>/log.stdout, log.stderr, script.sh

No other module of mlxcore spells a name inside a run directory: they ask :class:`RunPaths`.
"""

from __future__ import annotations

from pathlib import Path

#: the layout version written by this mlxcore (1: every run written before the run store, with no lease)
FORMAT = 2

STATE_DIR = ".mlxcore"
STAGING_DIR = "staging"
SUBMISSIONS_DIR = "submissions"
ID_COUNTER = "last_id"
ID_LOCK = "ids.lock"

METADATA = "metadata"
METRICS = "metrics"
ARTIFACTS = "artifacts"
CHECKPOINTS = "checkpoints"

INFO = "info.yaml"
CONFIG = "config.yaml"
SETTINGS = "mlx.yaml"
SCHEDULER = "scheduler.yaml"
LEASE = "lease"
HEARTBEAT = "heartbeat"
CANCEL_MARKER = "cancel_requested"
PREEMPTED_MARKER = "preempted"
#: the preempted marker's line when the attempt saved a checkpoint (else ``no checkpoint``)
CHECKPOINTED = "checkpoint"
#: written by a job script that could not start its task (the interpreter is missing on the node): one line
JOB_ERROR_MARKER = "job_error"
JOB_IDS = "job_ids"
METADATA_CACHE = ".cache.json"
SCHEDULER_CACHE = ".cache.scheduler.json"
SUMMARIES = ".summaries.json"
STREAM_SUFFIX = ".json"
STDOUT = "log.stdout"
STDERR = "log.stderr"
JOB_SCRIPT = "script.sh"

#: temporary files of atomic writes: ``.<name>.<random>.tmp`` next to the file they replace
TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def is_run_name(name: str) -> bool:
    """The names the store gives run directories: ``12``, never ``012``, ``+1`` or ``²``."""
    return name.isascii() and name.isdigit() and (name[0] != "0" or name == "0")


def state_dir(parent: Path) -> Path:
    return parent / STATE_DIR


def submission_dir(parent: Path, first_id: int, last_id: int) -> Path:
    """Where an array submission of runs ``first_id..last_id`` keeps its script and argument file."""
    return parent / STATE_DIR / SUBMISSIONS_DIR / f"{first_id}-{last_id}"


class RunPaths:
    """The paths of one run directory."""

    __slots__ = ("root",)

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunPaths({str(self.root)!r})"

    @property
    def metadata(self) -> Path:
        return self.root / METADATA

    def metadata_file(self, name: str) -> Path:
        return self.root / METADATA / name

    @property
    def info(self) -> Path:
        return self.root / METADATA / INFO

    @property
    def config(self) -> Path:
        return self.root / METADATA / CONFIG

    @property
    def settings(self) -> Path:
        return self.root / METADATA / SETTINGS

    @property
    def scheduler(self) -> Path:
        return self.root / METADATA / SCHEDULER

    @property
    def lease(self) -> Path:
        return self.root / METADATA / LEASE

    @property
    def heartbeat(self) -> Path:
        return self.root / METADATA / HEARTBEAT

    @property
    def cancel_marker(self) -> Path:
        return self.root / METADATA / CANCEL_MARKER

    @property
    def preempted_marker(self) -> Path:
        return self.root / METADATA / PREEMPTED_MARKER

    @property
    def job_error_marker(self) -> Path:
        return self.root / METADATA / JOB_ERROR_MARKER

    @property
    def job_ids(self) -> Path:
        return self.root / METADATA / JOB_IDS

    @property
    def metrics(self) -> Path:
        return self.root / METRICS

    def stream(self, name: str) -> Path:
        return self.root / METRICS / f"{name}{STREAM_SUFFIX}"

    @property
    def artifacts(self) -> Path:
        return self.root / ARTIFACTS

    def artifact(self, artifact_format: str, name: str) -> Path:
        return self.root / ARTIFACTS / artifact_format / name

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    def checkpoint(self, name: str, artifact_format: str) -> Path:
        return self.root / CHECKPOINTS / f"{name}.{artifact_format}"

    @property
    def stdout(self) -> Path:
        return self.root / STDOUT

    @property
    def stderr(self) -> Path:
        return self.root / STDERR

    @property
    def job_script(self) -> Path:
        return self.root / JOB_SCRIPT

    def temp_dirs(self) -> list[Path]:
        """The directories where atomic writes leave ``.*.tmp`` files behind when the writer is killed."""
        return [self.metadata, self.metrics, self.checkpoints, *sorted(self.artifacts.glob("*/"))]
