"""``mlxcore.Reader``: the front door to whichever reader plugin is selected.

``Reader(path)`` builds the reader registered (through the ``register_readers`` hook) under the
``reader.name`` setting the newest run of ``path`` was launched with (``mlx.reader.name``; default ``duckdb``);
``Reader(path, reader="other")`` picks another. A reader class may subclass :class:`Reader` (then it is
returned as is) or be any class taking ``(path, **options)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar


def default_reader_name(path: Any = None) -> str:
    """``reader.name`` in the ``mlx.yaml`` of the newest run of ``path`` (found through the id counter, without
    listing the directory), else the default setting."""
    import yaml

    from .. import store
    from ..settings import Settings
    from ..store import layout

    if path is not None:
        root = Path(path).expanduser()
        try:
            last = int((layout.state_dir(root) / layout.ID_COUNTER).read_text())
        except (OSError, ValueError):
            last = 0
        for log_id in range(last, max(last - 5, 0), -1):  # the newest may still be being created
            try:
                name = (store.read_yaml(layout.RunPaths(root / str(log_id)).settings) or {})["reader"]["name"]
            except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
                continue
            if isinstance(name, str):
                return name
    return Settings().reader.name


class Reader:
    """Query a logs directory. Subclasses implement :meth:`filter`, :meth:`sql`, :meth:`compare` and :meth:`plot`."""

    name: ClassVar[str] = ""

    def __new__(cls, path: Any = None, *args: Any, reader: str | None = None, **options: Any) -> Any:
        if cls is not Reader:
            return super().__new__(cls)
        from ..plugins import get_reader_class

        klass = get_reader_class(reader or default_reader_name(path))
        if isinstance(klass, type) and issubclass(klass, Reader):
            return super().__new__(klass)  # Python then calls klass.__init__(path, *args, reader=..., **options)
        return klass(path, *args, **options)

    def filter(self, query: str = "", result_format: str = "pandas") -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def sql(self, query: str) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def compare(self, group_by: list[str], metric: str, reduce: str = "last") -> Any:  # pragma: no cover
        raise NotImplementedError

    def plot(self, metric: str, x: str | None = None, group_by: list[str] = ()) -> Any:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        """Release what the reader holds (files, connections)."""

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
