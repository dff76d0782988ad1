"""``log_streams_to_file``: the task's stdout and stderr, also written to ``log.stdout``/``log.stderr``.

The tee works at the file-descriptor level (a pipe per stream and a thread copying it to both the terminal and
the file), so output of C extensions and child processes is captured too, not only Python ``print``.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from ..signals import block_in_this_thread


class _FdTee:
    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.saved = os.dup(fd)
        self.file = open(path, "ab", buffering=0)
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        self.read_end = read_end
        self.thread = threading.Thread(target=self._pump, name=f"mlxcore-tee-{fd}", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        block_in_this_thread()
        while True:
            chunk = os.read(self.read_end, 65536)
            if not chunk:
                break
            os.write(self.saved, chunk)
            self.file.write(chunk)

    def close(self) -> None:
        os.dup2(self.saved, self.fd)  # the pipe's last write end closes here: the pump sees EOF
        self.thread.join(timeout=5)
        os.close(self.read_end)
        os.close(self.saved)
        self.file.close()


class StreamTee:
    """Context manager teeing fds 1 and 2 into ``run_dir/log.stdout`` and ``run_dir/log.stderr``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._tees: list[_FdTee] = []

    def __enter__(self) -> StreamTee:
        sys.stdout.flush()
        sys.stderr.flush()
        self._tees = [_FdTee(1, self.run_dir / "log.stdout"), _FdTee(2, self.run_dir / "log.stderr")]
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for tee in self._tees:
            tee.close()
        self._tees = []
