"""MLXP's result objects, for :mod:`.mlxp_api`: a run (:class:`DataDict`), a list of runs (:class:`DataFrame`)
and its groups (:class:`GroupedDataFrame`), with MLXP's maps ``(function, input keys[, output names])``."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArtifactError, QueryError, UnknownChoiceError
from ..loggers.base import MISSING

if TYPE_CHECKING:
    from .mlxp_api import _Loader

MAP_TYPES = ("Generic", "Columnwise", "Rowwise", "Pointwise")


class _Lazy:
    """Marks a metric value not loaded yet; shown as ``METRIC``, as MLXP shows it."""

    def __repr__(self) -> str:
        return "METRIC"


LAZY = _Lazy()


class DataDict(Mapping):
    """One run (or one row of a result of maps): a read-only mapping whose metric values load on first read."""

    __slots__ = ("_loader", "_values", "log_id")

    def __init__(self, values: dict[str, Any], loader: _Loader | None = None, log_id: int | None = None) -> None:
        self._values, self._loader, self.log_id = values, loader, log_id

    def __getitem__(self, key: str) -> Any:
        if key not in self._values and key.startswith("artifact."):
            raise KeyError(f"{key!r}: mlxcore has no artifact columns; use run.load_artifacts(name) or "
                           "run.load_checkpoint(name) on a run of the result")
        value = self._values[key]
        if value is LAZY and self._loader is not None and self.log_id is not None:
            return self._loader.value(self.log_id, key)
        return value

    def __contains__(self, key: object) -> bool:  # without loading
        return key in self._values

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(self._values)

    def _flattened(self) -> dict[str, Any]:
        """The values, with ``METRIC`` for those not loaded (MLXP's lazy view)."""
        return {k: "METRIC" if v is LAZY else v for k, v in self._values.items()}

    def _with(self, extra: Mapping[str, Any]) -> DataDict:
        return DataDict({**self._values, **extra}, self._loader, self.log_id)

    # -- the run's files, read by the logger's own code ------------------------------------------------------
    def _logger(self) -> Any:
        """The run's logger, for reading (no lease: nothing is written)."""
        from ..loggers.files import FileLogger
        from ..settings import LoggerSettings
        from ..store import open_run_dir

        if self._loader is None or self.log_id is None:
            raise ArtifactError("this row is not a run (it was computed by a map): it has no artifacts")
        return FileLogger.attach(open_run_dir(Path(self._loader.reader.path) / str(self.log_id)), LoggerSettings())

    def load_artifacts(self, artifact_name: str, artifact_format: str | None = None) -> Any:
        """What the run saved with ``ctx.logger.log_artifacts(obj, artifact_name, artifact_format)``."""
        return self._logger().load_artifacts(artifact_name, artifact_format)

    def load_checkpoint(self, log_name: str = "checkpoint", default: Any = MISSING) -> Any:
        """The run's last checkpoint ``log_name`` (``ctx.logger.log_checkpoint``), or ``default`` if none."""
        return self._logger().load_checkpoint(log_name, default)


def _names(value: Any, what: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, (list, tuple)) else None
    if not names or not all(isinstance(n, str) for n in names):
        raise QueryError(f"{what} must be a column name or a list of them, got {value!r}")
    return names


def _maps(maps: Any, per_key: bool) -> list[tuple[Callable, tuple[str, ...], tuple[str, ...]]]:
    """MLXP's maps: ``(function, inputs[, outputs])`` or a list of them; a per-key map (columnwise, pointwise)
    has one output per input, named ``f<function>.<input>`` by default, others one, ``f<function>.<a>_<b>``."""
    checked = []
    for one in maps if isinstance(maps, list) else [maps]:
        if not isinstance(one, tuple) or len(one) not in (2, 3) or not callable(one[0]):
            raise QueryError(f"a map is (function, input keys[, output names]), got {one!r}")
        inputs = _names(one[1], "a map's input keys")
        name = _fname(one[0])
        if len(one) == 3:
            outputs = _names(one[2], "a map's output names")
        else:
            outputs = tuple(f"f{name}.{k}" for k in inputs) if per_key else (f"f{name}.{'_'.join(inputs)}",)
        if per_key and len(outputs) != len(inputs):
            raise QueryError(f"map {name}: {len(outputs)} output names for {len(inputs)} input keys")
        checked.append((one[0], inputs, outputs))
    return checked


def _fname(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _named(outputs: tuple[str, ...], result: Any, name: str) -> dict[str, Any]:
    if len(outputs) == 1:
        return {outputs[0]: result}
    if not isinstance(result, tuple) or len(result) != len(outputs):
        raise QueryError(f"map {name} must return a tuple of {len(outputs)} values ({', '.join(outputs)})")
    return dict(zip(outputs, result))


def _order(value: Any) -> tuple:
    """A sort key putting ``None`` last (MLXP could not sort or group with it)."""
    return (value is None, value if value is not None else 0)


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


class DataFrame(list):
    """MLXP's ``DataFrame``: a list of runs (:class:`DataDict`), shown as a pandas frame; ``frame[:][key]`` is
    the column ``key``."""

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return _Columns(DataFrame(list.__getitem__(self, index)))
        return list.__getitem__(self, index)

    def __repr__(self) -> str:
        return str(self.toPandas())

    def _repr_html_(self) -> str:
        return self.toPandas()._repr_html_()

    def keys(self) -> list[str]:
        """The column names, in order of first appearance."""
        return list(dict.fromkeys(k for row in self for k in row))

    def _check(self, keys: Iterable[str], where: str) -> None:
        if not self:  # an empty result has no columns to check against: it groups into no group, and so on
            return
        known = self.keys()
        for key in keys:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
                hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
                raise QueryError(f"unknown column {key!r} in {where}{hint}; the result has {len(known)} columns: "
                                 f"{', '.join(known[:12])}{' ...' if len(known) > 12 else ''}")

    def _preload(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for loader in {id(row._loader): row._loader for row in self if row._loader is not None}.values():
            loader.load(keys)

    def column(self, key: str) -> list:
        """The values of ``key`` in every row (metric lists of every run loaded by one query)."""
        self._check([key], "column")
        self._preload([key])
        return [row.get(key) for row in self]

    def toPandas(self, lazy: bool = True) -> Any:
        """A pandas frame; ``lazy``: metric values not loaded yet are shown as ``METRIC``."""
        import pandas as pd

        if not lazy:
            self._preload(self.keys())
        return pd.DataFrame([row._flattened() if lazy else dict(row.items()) for row in self])

    def diff(self, start_key: str = "config") -> list[str]:
        """The columns starting with ``start_key`` whose value is not the same in every row."""
        keys = [k for k in self.keys() if k.startswith(start_key)]
        self._preload(keys)
        return [k for k in keys if any(row.get(k) != self[0].get(k) for row in self)]

    def groupby(self, group_keys: str | list[str]) -> GroupedDataFrame:
        """A :class:`GroupedDataFrame` keyed by the tuple of the rows' values of ``group_keys``."""
        keys = _names(group_keys, "group keys")
        self._check(keys, "groupby")
        self._preload(keys)
        groups: dict[tuple, list[DataDict]] = {}
        for row in self:
            groups.setdefault(tuple(_hashable(row.get(k)) for k in keys), []).append(row)
        try:
            ordered = sorted(groups, key=lambda g: tuple(_order(v) for v in g))
        except TypeError:  # values of different types under one key: first seen first
            ordered = list(groups)
        return GroupedDataFrame(list(keys), {g: DataFrame(groups[g]) for g in ordered})

    def _columns(self, maps: list) -> dict[str, list]:
        needed = list(dict.fromkeys(k for _, inputs, _ in maps for k in inputs))
        self._check(needed, "map")
        self._preload(needed)
        return {k: [row.get(k) for row in self] for k in needed}

    def aggregate(self, maps: Any) -> DataFrame:
        """One row: each map's function applied to the list of values of each of its input columns."""
        maps = _maps(maps, per_key=True)
        columns = self._columns(maps)
        return DataFrame([DataDict({o: fn(columns[k]) for fn, ins, outs in maps for k, o in zip(ins, outs)})])

    def _split(self, out: Mapping[str, Any]) -> DataFrame | None:
        """``out`` as one row per row of this frame, when each of its values has one value per row."""
        if all(hasattr(v, "__len__") and len(v) == len(self) for v in out.values()):
            return DataFrame([DataDict({n: v[i] for n, v in out.items()}) for i in range(len(self))])
        return None

    def transform(self, maps: Any) -> DataFrame:
        """Like :meth:`aggregate`, each function returning one value per row: as many rows, the outputs only."""
        rows = self._split(self.aggregate(maps)[0])
        if rows is None:
            raise QueryError(f"transform: each output must have one value per row ({len(self)}); aggregate reduces")
        return rows

    def map(self, maps: Any) -> DataFrame:
        """Each function applied to each value of its input columns: as many rows, the outputs only."""
        maps = _maps(maps, per_key=True)
        self._columns(maps)
        return DataFrame([DataDict({o: fn(row[k]) for fn, ins, outs in maps for k, o in zip(ins, outs)})
                          for row in self])

    def apply(self, maps: Any, map_type: str = "Generic") -> DataFrame:
        """``Pointwise`` is :meth:`map`; ``Columnwise`` :meth:`aggregate` or :meth:`transform`; ``Rowwise`` calls
        ``function(*row values)`` per row; ``Generic`` calls ``function(*column lists)`` once, and gives one row,
        or one per row when every output has one value per row."""
        if map_type not in MAP_TYPES:
            raise UnknownChoiceError("map_type", map_type, MAP_TYPES)
        if map_type == "Pointwise":
            return self.map(maps)
        if map_type == "Columnwise":
            reduced = self.aggregate(maps)
            rows = self._split(reduced[0])
            return reduced if rows is None else rows
        checked = _maps(maps, per_key=False)
        columns = self._columns(checked)
        if map_type == "Rowwise":
            return DataFrame([DataDict({k: v for fn, ins, outs in checked
                                        for k, v in _named(outs, fn(*(row[i] for i in ins)), _fname(fn)).items()})
                              for row in self])
        out = {k: v for fn, ins, outs in checked
               for k, v in _named(outs, fn(*(columns[i] for i in ins)), _fname(fn)).items()}
        rows = self._split(out)
        return DataFrame([DataDict(out)]) if rows is None else rows

    def filter(self, filter_map: Any, bygroups: str | list[str] | None = None) -> DataFrame:
        """The rows for which ``function(*input column lists)`` returned a true value (one per row); with
        ``bygroups``, the function is applied within each group of those columns."""
        if bygroups:
            return self.groupby(bygroups).filter(filter_map, ungroup=True)
        checked = _maps(filter_map, per_key=False)
        if len(checked) != 1:
            raise QueryError("filter takes one map: (function, input keys)")
        fn, inputs, _ = checked[0]
        columns = self._columns(checked)
        keep = fn(*(columns[k] for k in inputs))
        if not hasattr(keep, "__len__") or len(keep) != len(self):
            raise QueryError(f"filter map {_fname(fn)} must return one boolean per row ({len(self)})")
        return DataFrame([row for row, ok in zip(self, keep) if ok])

    # MLXP's DataFrame.sort(by) returns a new frame: on purpose not list.sort's signature (key=, reverse=, in place)
    def sort(self, by: str | list[str], ascending: bool = True) -> DataFrame:  # type: ignore[override]
        """The rows sorted by the columns ``by`` (``None`` last when ascending)."""
        keys = _names(by, "sort keys")
        self._check(keys, "sort")
        self._preload(keys)
        return DataFrame(sorted(self, key=lambda row: tuple(_order(row.get(k)) for k in keys), reverse=not ascending))

    def merge(self, new_df: DataFrame) -> DataFrame:
        """Each row with the columns of the row of ``new_df`` at the same position."""
        if len(new_df) != len(self):
            raise QueryError(f"merge needs as many rows: {len(self)} and {len(new_df)}")
        return DataFrame([row._with(dict(other.items())) for row, other in zip(self, new_df)])


class _Columns:
    """``frame[:]``: ``frame[:][key]`` is the list of the values of ``key``."""

    def __init__(self, frame: DataFrame) -> None:
        self.frame = frame

    def __getitem__(self, key: str) -> list:
        return self.frame.column(key)


class GroupedDataFrame:
    """MLXP's ``GroupedDataFrame``: ``{tuple of group values: DataFrame}`` (groups sorted, ``None`` last)."""

    def __init__(self, group_keys: list[str], grouped_dict: dict[tuple, Any]) -> None:
        self.group_keys, self.grouped_dict = list(group_keys), dict(grouped_dict)

    def __iter__(self) -> Any:
        return iter(self.grouped_dict)

    def __len__(self) -> int:
        return len(self.grouped_dict)

    def __getitem__(self, key: tuple) -> Any:
        return self.grouped_dict[key]

    def keys(self) -> Any:
        return self.grouped_dict.keys()

    def items(self) -> Any:
        return self.grouped_dict.items()

    def __repr__(self) -> str:
        return str(self.toPandas())

    def _repr_html_(self) -> str:
        return self.toPandas()._repr_html_()

    def toPandas(self, lazy: bool = True) -> Any:
        """The groups' frames, indexed by the group values, then the row within the group."""
        import pandas as pd

        if not self.grouped_dict:
            return pd.DataFrame()
        frames = [group.toPandas(lazy) for group in self.grouped_dict.values()]
        return pd.concat(frames, keys=list(self.grouped_dict), names=self.group_keys)

    def ungroup(self) -> Any:
        """One :class:`DataFrame` of every group's rows, each with its group's values as columns (nested groups
        are ungrouped one level)."""
        if any(isinstance(g, GroupedDataFrame) for g in self.grouped_dict.values()):
            return GroupedDataFrame(self.group_keys, {k: g.ungroup() for k, g in self.items()})
        return DataFrame([row._with(dict(zip(self.group_keys, key))) for key, group in self.items() for row in group])

    def _each(self, operation: str, *args: Any, ungroup: bool = False, **kwargs: Any) -> Any:
        result = GroupedDataFrame(self.group_keys, {k: getattr(g, operation)(*args, **kwargs) for k, g in self.items()})
        return result.ungroup() if ungroup else result

    def aggregate(self, maps: Any, ungroup: bool = False) -> Any:
        return self._each("aggregate", maps, ungroup=ungroup)

    def transform(self, maps: Any, ungroup: bool = False) -> Any:
        return self._each("transform", maps, ungroup=ungroup)

    def map(self, maps: Any, ungroup: bool = False) -> Any:
        return self._each("map", maps, ungroup=ungroup)

    def apply(self, maps: Any, map_type: str = "Generic", ungroup: bool = False) -> Any:
        return self._each("apply", maps, map_type, ungroup=ungroup)

    def sort(self, by: str | list[str], ascending: bool = True, ungroup: bool = False) -> Any:
        return self._each("sort", by, ascending, ungroup=ungroup)

    def groupby(self, group_keys: str | list[str]) -> GroupedDataFrame:
        return self._each("groupby", group_keys)

    def filter(self, filter_map: Any, bygroups: str | list[str] | None = None, ungroup: bool = False) -> Any:
        """Each group filtered; with ``bygroups``, the rows of all groups are filtered within the groups of
        ``bygroups`` instead (MLXP: pick the best setting per method), then grouped again unless ``ungroup``."""
        if bygroups:
            flat = self.ungroup().groupby(bygroups).filter(filter_map, ungroup=True)
            return flat if ungroup else flat.groupby(self.group_keys)
        return self._each("filter", filter_map, ungroup=ungroup)

    def select(self, key_list: Iterable[tuple]) -> GroupedDataFrame:
        """The groups whose key is in ``key_list``."""
        wanted = set(key_list)
        return GroupedDataFrame(self.group_keys, {k: g for k, g in self.items() if k in wanted})
