"""The reader interface, and ``mlxcore.Reader``: the front door to whichever reader plugin is selected.

A reader plugin subclasses :class:`Reader`, implements its abstract methods, and registers the class with the
``register_readers`` hook; every command that reads runs (``mlxcore query``, ``status``, ``cancel --filter``,
``plot``) and ``mlxcore.Reader(path)`` use it through this interface only. :class:`mlxcore.testing.ReaderContract`
checks a plugin against it.

``mlxcore.Reader(path)`` builds the reader registered under the ``reader.name`` setting the newest run of
``path`` was launched with (``mlx.reader.name``; default ``duckdb``); ``Reader(path, reader="other")`` picks
another. The choice is made by the class's metaclass, so a plugin's ``__init__`` runs once, with the options
below and never ``reader=``.

Result formats, for every method that returns rows: ``"pandas"`` (a DataFrame), ``"records"`` (a list of
dicts, without pandas) and ``"rows"`` (``(column names, list of tuples)``: what the command line prints).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import QueryError

#: ``progress(phase, done, total)``, told how far a long refresh has got
Progress = Callable[[str, int, int], Any]
RESULT_FORMATS = ("pandas", "records", "rows")


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


class _ChoosesPlugin(ABCMeta):
    """``Reader(path, reader=None, **options)`` builds the selected plugin's class instead of the interface
    (:meth:`Reader.open`, which typed code calls)."""

    def __call__(cls, path: Any = None, *args: Any, reader: str | None = None, **options: Any) -> Any:
        if cls is not Reader:
            if reader is not None:
                raise QueryError(f"reader={reader!r} selects a reader plugin: pass it to mlxcore.Reader, not to "
                                 f"{cls.__name__}")
            return super().__call__(path, *args, **options)
        return Reader.open(path, *args, reader=reader, **options)


class Reader(metaclass=_ChoosesPlugin):
    """Query a logs directory: the interface every reader plugin implements (see the module docstring).

    :param path: the logs directory.
    :param catalog: where the reader may keep an index of the runs (a plugin without one ignores it).
    :param refresh: bring what the reader knows up to date with the directory now.
    :param progress: ``progress(phase, done, total)`` while a refresh reads many runs.
    :param timeout: seconds a query may run; past it, a :class:`~mlxcore.errors.QueryError`.
    :param memory_limit: what a query may take, in bytes or as ``"2GB"``.
    :param rebuild: read every run again (after files were edited by hand, not through mlxcore).
    """

    name: ClassVar[str] = ""
    #: the reader interface this class implements (``mlxcore plugins`` shows it)
    interface_version: ClassVar[str] = "0.2"

    @staticmethod
    def open(path: str | Path, *args: Any, reader: str | None = None, **options: Any) -> Reader:
        """The reader plugin ``reader`` (default: the newest run's ``mlx.reader.name``) over ``path``."""
        from ..plugins import get_reader_class

        return get_reader_class(reader or default_reader_name(path))(path, *args, **options)

    def __init__(self, path: str | Path, *, catalog: str | Path | None = None, refresh: bool = True,
                 progress: Progress | None = None, timeout: float = 300.0, memory_limit: int | str | None = None,
                 rebuild: bool = False) -> None:
        self.path = Path(path).expanduser().absolute()

    # -- what the runs hold -------------------------------------------------------------------------------------
    @property
    @abstractmethod
    def columns(self) -> list[str]:
        """The columns of a :meth:`filter` result: ``log_id``, ``status``, ``config.*``, ``info.*`` and the
        summaries ``<stream>.<key>.last|min|max|mean|count``."""

    @property
    @abstractmethod
    def streams(self) -> dict[str, list[str]]:
        """``{stream: the keys logged in it}``."""

    @property
    def problems(self) -> list[dict[str, Any]]:
        """What could not be read, one ``{"log_id", "problem"}`` per problem (runs left out, unreadable files)."""
        return []

    def refresh(self, progress: Progress | None = None, rebuild: bool = False) -> Any:
        """Bring what the reader knows up to date with the logs directory (a reader reading the files at each
        query has nothing to do)."""

    # -- queries ------------------------------------------------------------------------------------------------
    @abstractmethod
    def filter(self, query: str = "", result_format: str = "pandas", columns: Iterable[str] | None = None) -> Any:
        """The runs matching an MLXP filter string (Python's semantics; ``mlxcore.reader.filters``), one row a
        run, in ``log_id`` order: every column of :attr:`columns`, or ``columns``."""

    @abstractmethod
    def sql(self, query: str, result_format: str = "pandas") -> Any:
        """A read-only query (``SELECT`` or ``WITH``) over ``runs`` and the stream tables; anything that writes
        or reads files is refused with a :class:`~mlxcore.errors.QueryError`."""

    @abstractmethod
    def metrics(self, stream: str, filter: str = "", keys: Sequence[str] | None = None,
                result_format: str = "pandas") -> Any:
        """The rows of ``stream`` logged by the runs matching ``filter``: ``log_id``, ``_row`` and the keys."""

    @abstractmethod
    def compare(self, group_by: Sequence[str] | str = (), metric: str = "", reduce: str = "last",
                at: Any = None, x: str | None = None, filter: str = "", result_format: str = "pandas") -> Any:
        """Each run's ``metric`` reduced to one value (``last``, ``min``, ``max``, ``mean``, or the value ``at``
        an ``x``), then ``mean``, ``std``, ``sem``, ``n``, ``min``, ``max`` over the runs of each group."""

    @abstractmethod
    def curves(self, metric: str, x: str | None = None, group_by: Sequence[str] | str = (), filter: str = "",
               result_format: str = "pandas") -> Any:
        """Per group and ``x``: the ``mean``, ``std``, ``sem`` and ``n`` of ``metric`` over the group's runs."""

    def plot(self, metric: str, x: str | None = None, group_by: Sequence[str] | str = (), filter: str = "",
             band: str | None = "std", ax: Any = None, title: str | None = None, logy: bool = False,
             figsize: tuple[float, float] = (6.4, 4.0), dpi: int = 100) -> Any:
        """One curve per group: the mean of ``metric`` against ``x`` with a ``std`` or ``sem`` band (``None``:
        none), drawn from :meth:`curves`; returns the :class:`matplotlib.figure.Figure`."""
        from .plot import draw_curves

        groups = [group_by] if isinstance(group_by, str) else list(group_by)
        data = self.curves(metric, x, groups, filter, result_format="records")
        return draw_curves(data, groups, metric, x, band, ax=ax, title=title, logy=logy, figsize=figsize, dpi=dpi)

    def column(self, name: str, what: str = "column") -> str:
        """The column ``name`` names, matched without regard to case as SQL does; a
        :class:`~mlxcore.errors.QueryError` listing the close names when there is none."""
        from .filters import unknown_column

        found = {c.lower(): c for c in self.columns}.get(name.lower())
        if found is None:
            raise unknown_column(name, tuple(self.columns), what)
        return found

    def close(self) -> None:
        """Release what the reader holds (files, connections)."""

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
