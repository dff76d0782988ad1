"""Finding runs on disk, telling which changed since the catalog last saw them, and reading their metadata.

A run's *signature* is what the catalog compares to decide whether to re-read it:

* the ``mtime_ns`` of ``metadata/`` — every metadata write is an atomic rename, which changes the directory
  (``info.yaml``, ``config.yaml``, ``scheduler.yaml``, the cancel marker); touching the heartbeat does not;
* for a run that is not finished yet, the size of each ``metrics/*.json`` too (they grow while it runs).

A signature whose newest timestamp is less than :data:`RACY_NS` older than the scan is marked racy and never
matches, so a write landing in the same timestamp tick as the scan is not missed (git's "racy clean" problem):
file times advance in ticks of a few milliseconds, and a network filesystem's clock may be a little off ours.
Such a run is simply read again at the next refresh.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RACY_NS = 2_000_000_000
METADATA = "metadata"
METRICS = "metrics"

#: column types of the runs table, from the narrowest; see :func:`combine_types`
BOOLEAN, BIGINT, DOUBLE, VARCHAR, JSON = "BOOLEAN", "BIGINT", "DOUBLE", "VARCHAR", "JSON"
_INT64 = (-(2**63), 2**63 - 1)


def list_runs(root: Path) -> dict[int, str]:
    """Every numbered directory of ``root`` (``root/<id>``), by id (paths as strings: making ten thousand
    ``Path`` objects costs more than listing the directory)."""
    found: dict[int, str] = {}
    try:
        entries = os.scandir(root)
    except FileNotFoundError:
        return found
    with entries:
        for entry in entries:
            name = entry.name
            if name.isdigit() and entry.is_dir(follow_symlinks=False):
                found[int(name)] = entry.path
    return found


def signature(run_dir: str, final: bool, scan_start_ns: int, racy_ns: int = RACY_NS) -> str:
    """The change marker of ``run_dir`` (see the module docstring). Called for every run at every refresh:
    one ``stat`` for a finished run, and no more Python than needed around it."""
    try:
        meta_ns = os.stat(f"{run_dir}/{METADATA}").st_mtime_ns
    except FileNotFoundError:
        meta_ns = 0
    if final:
        return f"{meta_ns}|racy" if meta_ns >= scan_start_ns - racy_ns else str(meta_ns)
    parts = [str(meta_ns)]
    newest = meta_ns
    if not final:
        try:
            with os.scandir(f"{run_dir}/{METRICS}") as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    if entry.name.endswith(".json"):
                        st = entry.stat()
                        parts.append(f"{entry.name}:{st.st_size}")
                        newest = max(newest, st.st_mtime_ns)
        except FileNotFoundError:
            pass
    sig = "|".join(parts)
    if newest >= scan_start_ns - racy_ns:
        sig += "|racy"
    return sig


def metric_files(run_dir: str) -> dict[str, str]:
    """``{stream: path}`` for each ``metrics/<stream>.json`` of the run."""
    out: dict[str, str] = {}
    try:
        with os.scandir(os.path.join(run_dir, METRICS)) as entries:
            for entry in entries:
                name = entry.name
                if name.endswith(".json") and not name.startswith(".") and entry.is_file(follow_symlinks=False):
                    out[name[: -len(".json")]] = entry.path
    except FileNotFoundError:
        pass
    return out


@dataclass
class RunRecord:
    """What the catalog keeps of one run's metadata."""

    log_id: int
    info: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def flat(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        flatten("info", self.info, row)
        flatten("config", self.config, row)
        return row


def yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_run(log_id: int, run_dir: str, loader: Any = None) -> RunRecord:
    """Read ``info.yaml`` and ``config.yaml``; a missing or unreadable file leaves that part empty."""
    import yaml

    loader = loader or yaml_loader()
    record = RunRecord(log_id)
    for part in ("info", "config"):
        path = os.path.join(run_dir, METADATA, f"{part}.yaml")
        try:
            with open(path, "rb") as handle:
                data = yaml.load(handle, Loader=loader)
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as exc:
            record.problems.append(f"{path}: {' '.join(str(exc).split())[:200]}")
            continue
        if isinstance(data, dict):
            setattr(record, part, data)
        elif data is not None:
            record.problems.append(f"{path}: not a mapping")
    _merge_scheduler_record(record, run_dir, loader)
    return record


def _merge_scheduler_record(record: RunRecord, run_dir: str, loader: Any) -> None:
    """What the submission recorded (``scheduler.yaml``: name, job id, submit time, script) shows as
    ``info.scheduler.*`` from the moment of submission; what the running job wrote in its info wins."""
    import yaml

    try:
        with open(os.path.join(run_dir, METADATA, "scheduler.yaml"), "rb") as handle:
            submitted = yaml.load(handle, Loader=loader)
    except (OSError, yaml.YAMLError):
        return
    if isinstance(submitted, dict):
        own = record.info.get("scheduler")
        record.info["scheduler"] = {**submitted, **(own if isinstance(own, dict) else {})}


def flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """``{"a": {"b": 1}}`` under ``config`` becomes ``{"config.a.b": 1}``; lists stay whole."""
    if isinstance(value, dict):
        if not value and prefix.count(".") > 0:
            out[prefix] = {}
        for key, child in value.items():
            flatten(f"{prefix}.{key}", child, out)
    else:
        out[prefix] = value


def value_type(value: Any) -> str | None:
    """The catalog type of one metadata value; ``None`` for a missing value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return BIGINT if _INT64[0] <= value <= _INT64[1] else VARCHAR
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, (str, datetime, date)):
        return VARCHAR
    return JSON


def combine_types(a: str | None, b: str | None) -> str | None:
    """The narrowest type holding values of both types."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    if {a, b} == {BIGINT, DOUBLE}:
        return DOUBLE
    if JSON in (a, b):
        return JSON
    return VARCHAR


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


def _json(value: Any) -> str:
    import json

    def default(obj: Any) -> Any:
        return obj.isoformat() if isinstance(obj, (datetime, date)) else str(obj)

    return json.dumps(value, default=default)
