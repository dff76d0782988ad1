"""Metric rows under failing writes (a full disk, a quota): each row reaches the file exactly once, in order,
never as half a line; property-based (hypothesis) against the simplest oracle, the list of lines logged.

The failures are injected at the ``os.write`` the stream calls: a real disk cannot be made to fail at an
arbitrary byte of an arbitrary write (the real full-disk test, on a small tmpfs, is in test_faults.py).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlxcore.loggers import metrics
from mlxcore.loggers.metrics import MetricStream, MetricsWriteError, encode_row

KEYS = st.sampled_from(["loss", "acc", "step", "name", "é"])
VALUES = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=30).filter(lambda t: not any(0xD800 <= ord(c) <= 0xDFFF for c in t)),
                   st.booleans(), st.none())
ROWS = st.lists(st.dictionaries(KEYS, VALUES, min_size=1, max_size=4), min_size=1, max_size=80)
#: one entry per os.write call: None writes everything, 0 fails at once (ENOSPC), n > 0 writes n bytes (a short
#: write: the next call gets the next entry)
BUDGETS = st.lists(st.one_of(st.none(), st.just(0), st.integers(1, 200)), max_size=40)


class FailingOS:
    """``os`` as the stream sees it, with ``write`` following a script of budgets, then working again."""

    def __init__(self, budgets: list[int | None]) -> None:
        self.budgets = list(budgets)
        self.failed = 0

    def __getattr__(self, name: str):
        return getattr(os, name)

    def write(self, fd: int, data) -> int:
        if not self.budgets:
            return os.write(fd, data)
        budget = self.budgets.pop(0)
        if budget is None:
            return os.write(fd, data)
        if budget == 0:
            self.failed += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, bytes(data[:budget]))


def on_disk(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"a torn line: {text[-60:]!r}"
    return text.splitlines()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, budgets=BUDGETS, flush_every=st.integers(1, 12))
def test_every_row_reaches_the_file_once_in_order_whatever_the_writes_do(tmp_path, monkeypatch, rows, budgets,
                                                                         flush_every):
    path = tmp_path / f"train-{os.urandom(4).hex()}.json"
    failing = FailingOS(budgets)
    monkeypatch.setattr(metrics, "os", failing)
    stream = MetricStream(path)
    expected = []
    for i, row in enumerate(rows):
        line = encode_row(row)
        expected.append(line.rstrip("\n"))
        stream.append(line)
        stream.summary.add(row, line)
        if i % flush_every == 0:
            try:
                stream.flush()
            except OSError:
                pass  # the rows wait in the buffer
            lines = on_disk(path)
            assert lines == expected[: len(lines)]  # a prefix: nothing lost before, nothing twice, in order
            assert stream.pending == len(expected) - len(lines)
    failing.budgets.clear()  # space is free again
    entry = stream.close()
    assert on_disk(path) == expected
    assert [json.loads(line) for line in expected] == [json.loads(line) for line in on_disk(path)]
    if entry is not None:  # the summary describes exactly the file
        assert entry["bytes"] == path.stat().st_size
        counts = {key: sum(1 for r in rows if r.get(key) is not None) for r in rows for key in r}
        for key, value in entry["keys"].items():
            assert value[1] == counts[key]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, budgets=BUDGETS)
def test_rows_that_never_fit_fail_the_stream_and_leave_whole_lines(tmp_path, monkeypatch, rows, budgets):
    path = tmp_path / f"train-{os.urandom(4).hex()}.json"
    failing = FailingOS([*budgets, *([0] * 10_000)])  # then the disk stays full
    monkeypatch.setattr(metrics, "os", failing)
    stream = MetricStream(path)
    expected = [encode_row(row) for row in rows]
    for line in expected:
        stream.append(line)
    try:
        entry = stream.close()
    except MetricsWriteError as exc:
        assert "could not be written" in str(exc)
        lines = on_disk(path)
        assert lines == [line.rstrip("\n") for line in expected[: len(lines)]] and len(lines) < len(expected)
    else:  # everything fitted within the budgets
        assert on_disk(path) == [line.rstrip("\n") for line in expected]
        assert entry is None or entry["bytes"] == path.stat().st_size
