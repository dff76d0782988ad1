"""The run store: the one owner of the run directory.

Its layout and file names (:mod:`.layout`, a versioned format), the statuses and their allowed moves
(:mod:`.statuses`), atomic writes (:mod:`.files`), creating a run whole (:mod:`.ids`, :class:`RunStore`),
attaching to and resuming a run with one writer at a time (:mod:`.lease`, :class:`RunWriter`), what it keeps
for readers (:mod:`.cache`), and the status to show (:mod:`.liveness`, :mod:`.reconcile`). Launching,
submission, ``mlxcore sub``, the loggers, the schedulers and the reader go through it.
"""

from .files import file_mode, now_iso, read_yaml, write_atomic, write_yaml
from .layout import FORMAT, HEARTBEAT, STATE_DIR, RunPaths
from .lease import RunBusyError, process_alive
from .liveness import effective_status, judge
from .reconcile import reconcile, reconcile_detail
from .run import Run, RunStore, open_run_dir
from .statuses import (
    ACTIVE_STATUSES,
    CANCELLED,
    COMPLETE,
    DEAD,
    FAILED,
    FINAL_STATUSES,
    INTERRUPTED,
    PENDING,
    PREEMPTED,
    PREEMPTED_EXIT_CODE,
    PRUNED,
    RUNNING,
    SUBMITTED,
    TIMEOUT,
    UNKNOWN,
    StatusError,
)
from .writer import ConfigChangedError, RunWriteError, RunWriter

__all__ = [
    "ACTIVE_STATUSES", "CANCELLED", "COMPLETE", "DEAD", "FAILED", "FINAL_STATUSES", "FORMAT", "INTERRUPTED",
    "PENDING", "PREEMPTED", "PREEMPTED_EXIT_CODE", "PRUNED", "RUNNING", "SUBMITTED", "TIMEOUT", "UNKNOWN",
    "ConfigChangedError", "Run", "RunBusyError", "RunPaths", "RunStore", "RunWriteError", "RunWriter",
    "HEARTBEAT", "STATE_DIR", "StatusError", "effective_status", "file_mode", "judge", "now_iso", "open_run_dir",
    "process_alive", "read_yaml", "reconcile", "reconcile_detail", "write_atomic", "write_yaml",
]
