"""Finding runs on disk, telling which changed since the catalog last saw them, and reading their metadata.

What the catalog compares to decide whether to re-read a run:

* for a finished run (its status is final), the ``mtime_ns`` of ``metadata/`` alone: every metadata write is an
  atomic rename, which changes the directory (``info.yaml``, ``config.yaml``, ``scheduler.yaml``, the cancel
  marker), and a resumed run rewrites ``info.yaml`` first; touching the heartbeat does not. One ``stat`` per
  run, relative to the logs directory (:func:`survey`): at 10,000 runs this is most of a reopen. A file of a
  finished run rewritten in place (not replaced) leaves the directory as it was: it is seen once the catalog is
  deleted (rebuilt);
* for a run not finished yet, its *signature*: that ``mtime_ns`` and the size of each ``metrics/*.json`` (they
  grow while it runs).

A stamp or signature whose newest timestamp is less than :data:`RACY_NS` older than the scan is *racy*: it is
not recorded (``None``), so it never matches and a write landing in the same timestamp tick as the scan is not
missed (git's "racy clean" problem): file times advance in ticks of a few milliseconds, and a network
filesystem's clock may be a little off ours. Such a run is simply read again at the next refresh.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .. import store
from ..store import cache as metadata_cache
from ..store import layout

log = logging.getLogger(__name__)

RACY_NS = 2_000_000_000
METADATA = layout.METADATA
METRICS = layout.METRICS

#: column types of the runs table, from the narrowest; see :func:`combine_types`
BOOLEAN, BIGINT, DOUBLE, VARCHAR, JSON = "BOOLEAN", "BIGINT", "DOUBLE", "VARCHAR", "JSON"
_INT64 = (-(2**63), 2**63 - 1)


def survey(root: Path) -> dict[int, int | None]:
    """``{id: mtime_ns of its metadata/ or None}`` for every directory of ``root`` named like a run (its path is
    ``f"{root}/{id}"``): one ``stat`` per run, relative to ``root`` (this loop is most of a reopen; the catalog runs
    it in a thread while DuckDB attaches the catalog). No path is built per run: at 10,000 runs, strings or
    ``Path`` objects cost as much as the listing. A symlink is followed here; :func:`is_run_dir` turns it away
    before anything in it is read."""
    found: dict[int, int | None] = {}
    prefix = str(root)
    try:
        fd = os.open(prefix, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return found
    try:
        stat_at = os.stat
        for name in os.listdir(fd):
            # the names the logger gives ("12", not "012" nor "²"), checked inline: this loop runs per run
            if not (name.isascii() and name.isdigit()) or (name[0] == "0" and name != "0"):
                continue
            try:
                stamp: int | None = stat_at(f"{name}/{METADATA}", dir_fd=fd).st_mtime_ns
            except NotADirectoryError:  # a file named like a run
                continue
            except FileNotFoundError:  # no metadata yet, or removed meanwhile
                stamp = None
            found[int(name)] = stamp
    finally:
        os.close(fd)
    return found


def is_run_dir(path: str) -> bool:
    """A real directory (not a symlink leading out of the logs directory, not removed meanwhile)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def signature(run_dir: str, scan_start_ns: int, racy_ns: int = RACY_NS) -> tuple[int | None, str | None]:
    """``(stamp, signature)`` of ``run_dir`` (see the module docstring): the ``mtime_ns`` of ``metadata/`` (0
    when missing) and the same with the sizes of the metric files; each ``None`` when racy."""
    meta_ns = metadata_stamp(run_dir)
    return compose(meta_ns, metric_files(run_dir, sizes=True)[1], scan_start_ns, racy_ns)


def metadata_stamp(run_dir: str) -> int:
    """The ``mtime_ns`` of ``run_dir/metadata`` (0 when missing)."""
    try:
        return os.stat(f"{run_dir}/{METADATA}").st_mtime_ns
    except FileNotFoundError:
        return 0


def compose(meta_ns: int, sizes: list[tuple[str, int, int]], scan_start_ns: int, racy_ns: int = RACY_NS
            ) -> tuple[int | None, str | None]:
    """``(stamp, signature)`` from the metadata stamp and ``(file name, size, mtime_ns)`` of each metric file."""
    racy_after = scan_start_ns - racy_ns
    newest = max([meta_ns, *(mtime for _, _, mtime in sizes)])
    signature = "|".join([str(meta_ns), *(f"{name}:{size}" for name, size, _ in sorted(sizes))])
    return (None if meta_ns >= racy_after else meta_ns), (None if newest >= racy_after else signature)


def metric_files(run_dir: str, sizes: bool = False) -> tuple[dict[str, str], list[tuple[str, int, int]]]:
    """``({stream: path}, [(file name, size, mtime_ns)])`` of the run's ``metrics/<stream>.json`` files; the
    second list only with ``sizes`` (one more ``stat`` per file)."""
    files: dict[str, str] = {}
    stats: list[tuple[str, int, int]] = []
    try:
        with os.scandir(f"{run_dir}/{METRICS}") as entries:
            for entry in entries:
                name = entry.name
                if name.endswith(".json") and not name.startswith(".") and entry.is_file(follow_symlinks=False):
                    files[name[: -len(".json")]] = entry.path
                    if sizes:
                        st = entry.stat(follow_symlinks=False)
                        stats.append((name, st.st_size, st.st_mtime_ns))
    except (FileNotFoundError, NotADirectoryError):
        pass
    return files, stats


@dataclass
class RunRecord:
    """What the catalog keeps of one run's metadata."""

    log_id: int
    info: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    has_info: bool = True  #: False when the run has no info file at all
    #: why the run cannot be in the runs table (its columns would collide), or ``None``
    quarantined: str | None = None

    #: the row of ``mlxcore_runs`` and the statuses, set by :meth:`settle`
    row: dict[str, Any] = field(default_factory=dict)
    raw_status: str = "UNKNOWN"
    status: str = "UNKNOWN"

    def flat(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        flatten("info", self.info, row)
        flatten("config", self.config, row)
        return row

    def settle(self, run_dir: str) -> None:
        """Compute :attr:`row` and the statuses: the status written in ``info.yaml`` and the one to show (a
        RUNNING run whose writer is gone is DEAD, and so is a run with no info: :func:`mlxcore.store.judge`)."""
        raw = self.info.get("status")
        self.raw_status = raw if isinstance(raw, str) else store.UNKNOWN
        if self.raw_status == store.RUNNING or not self.has_info:  # only these may show another status
            self.status = store.effective_status(dict(self.info, status=self.raw_status) if self.has_info else None,
                                                 Path(run_dir))
        else:
            self.status = self.raw_status
        self.row = self.flat()
        self.row["log_id"] = self.log_id
        self.row["status"] = self.row["info.status"] = self.status
        seen: dict[str, str] = {}
        for name in self.row:  # SQL names ignore case: config.n and config.N would be one column
            other = seen.setdefault(name.lower(), name)
            if other != name:
                self.quarantined = f"{other} and {name} differ only by case; the run is left out of the catalog"
                self.problems.append(self.quarantined)
                self.row = {"log_id": self.log_id, "status": self.status, "info.status": self.status}
                break


def yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_run(log_id: int, run_dir: str, loader: Any = None) -> RunRecord:
    """Read ``info.yaml`` and ``config.yaml`` (and the submission's ``scheduler.yaml``); a missing or unreadable
    file leaves that part empty. Each file is parsed as YAML unless the run's JSON copy holds exactly its bytes
    (:mod:`mlxcore.metadata_cache`)."""
    record = RunRecord(log_id)
    metadata = f"{run_dir}/{METADATA}"
    copies = metadata_cache.load(metadata)
    for part, name in (("info", layout.INFO), ("config", layout.CONFIG)):
        data = _read_part(metadata, name, copies, loader, record.problems)
        if part == "info" and data is None and not record.problems:
            record.has_info = False
        if isinstance(data, dict):
            setattr(record, part, data)
        elif data is not None:
            record.problems.append(f"{metadata}/{name}: not a mapping")
    # what the submission recorded (name, job id, submit time, script) shows as info.scheduler.* from the moment
    # of submission; what the running job wrote in its info wins
    submitted = _read_part(metadata, layout.SCHEDULER, copies, loader, None)
    if isinstance(submitted, dict):
        own = record.info.get("scheduler")
        record.info["scheduler"] = {**submitted, **(own if isinstance(own, dict) else {})}
    return record


def _read_part(metadata: str, name: str, copies: dict[str, Any], loader: Any, problems: list[str] | None) -> Any:
    """The data of ``metadata/name`` (``None`` when missing); unreadable files are told to ``problems``."""
    import yaml

    try:
        return metadata_cache.read(metadata, name, copies, loader)
    except FileNotFoundError:
        return None
    except (OSError, yaml.YAMLError) as exc:
        if problems is not None:
            problems.append(f"{metadata}/{name}: {' '.join(str(exc).split())[:200]}")
        return None


def flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """``{"a": {"b": 1}}`` under ``config`` becomes ``{"config.a.b": 1}``; lists stay whole. (Recursing only into
    mappings: this runs for every key of every run a refresh reads.)"""
    if not isinstance(value, dict):
        out[prefix] = value
        return
    if not value and "." in prefix:
        out[prefix] = {}
    for key, child in value.items():
        if isinstance(child, dict):
            flatten(f"{prefix}.{key}", child, out)
        else:
            out[f"{prefix}.{key}"] = child


def value_type(value: Any) -> str | None:
    """The catalog type of one metadata value; ``None`` for a missing value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return BIGINT if _INT64[0] <= value <= _INT64[1] else JSON
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, (str, datetime, date)):
        return VARCHAR
    return JSON


_EXACT_TYPES = {bool: BOOLEAN, float: DOUBLE, str: VARCHAR, type(None): None}


def column_type(values: list[Any]) -> str | None:
    """The narrowest catalog type holding every value of ``values`` (:func:`value_type` of each, combined), with
    one pass in C over the values' types: a catalog of 10,000 runs x 50 keys makes this call 50 times."""
    found: str | None = None
    kinds = set(map(type, values))
    for kind in kinds:
        if kind in _EXACT_TYPES:
            found = combine_types(found, _EXACT_TYPES[kind])
        else:  # int (range-checked), subclasses, dates, lists, mappings
            for value in values:
                if type(value) is kind:
                    found = combine_types(found, value_type(value))
    if found == DOUBLE and int in kinds and has_wide_int(values):
        return JSON  # a double would round these integers
    return found


#: the largest integer magnitude every double holds exactly
EXACT_INT = 2**53


def has_wide_int(values: list[Any]) -> bool:
    """An integer of ``values`` that a double would round."""
    return any(type(v) is int and abs(v) > EXACT_INT for v in values)


def column_values(values: list[Any], column: str) -> list[Any]:
    """``values`` as stored in a column of type ``column``; the same list when nothing needs converting."""
    kinds = set(map(type, values)) - {type(None)}
    if column in (BOOLEAN, BIGINT) or kinds <= {_PLAIN.get(column)}:
        return values
    return [convert(value, column) for value in values]


_PLAIN = {DOUBLE: float, VARCHAR: str}


def combine_types(a: str | None, b: str | None) -> str | None:
    """The narrowest type holding values of both types: integers and floats make DOUBLE (:func:`column_type`
    keeps integers a double would round as JSON); any other mix is JSON, which keeps each value's own type
    (the number 9 and the text '9' stay apart). VARCHAR holds text only (and dates, as ISO text)."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    if {a, b} == {BIGINT, DOUBLE}:
        return DOUBLE
    return JSON


def convert(value: Any, column_type: str) -> Any:
    """``value`` as stored in a column of ``column_type`` (see :func:`combine_types`)."""
    if value is None:
        return None
    if column_type in (BOOLEAN, BIGINT):
        return value
    if column_type == DOUBLE:
        return float(value)
    if column_type == VARCHAR:
        if isinstance(value, str):
            return value
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        return _json(value)
    return _json(value)


def _json_default(obj: Any) -> Any:
    return obj.isoformat() if isinstance(obj, (datetime, date)) else str(obj)


#: one encoder for every value (``json.dumps(value, default=...)`` builds a new one at each call: 3x the cost)
_json = json.JSONEncoder(default=_json_default).encode
