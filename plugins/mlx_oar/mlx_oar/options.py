"""The user's OAR options and mlxcore's generic ones, as ``#OAR`` directive values.

``oarsub -S`` reads each ``#OAR`` line as ONE option whose value is the rest of the line, verbatim (no shell
splitting, so ``-p gpumem>'16000'`` keeps its quotes). Hence one option per list item, and ``--name=value``
is rewritten ``--name value`` (OAR's directive parser only knows the blank). Several ``-l`` lines are
alternatives for OAR (a moldable job), not a sum: the generic resources make one ``-l`` line, and mixing them
with a native ``-l`` is refused.
"""

from __future__ import annotations

import logging
import re
import signal as signals
from typing import Any

from mlxcore.errors import ConfigError
from mlxcore.schedulers.base import GenericOptions

log = logging.getLogger(__name__)

#: options mlxcore sets itself; a native option naming one is dropped with a warning (``mlxcore sub``
#: scripts often have them)
MANAGED = {"-O": "--stdout", "-E": "--stderr", "-d": "--directory", "--array": None, "--array-param-file": None,
           "-S": "--scanscript"}
#: signals the shared job script forwards to the task that the task treats as stop signals
STOP_SIGNALS = ("USR1", "USR2")


def normalise(option: str) -> str:
    """``--type=idempotent`` -> ``--type idempotent``; surrounding blanks removed."""
    text = option.strip()
    match = re.fullmatch(r"(--[A-Za-z][A-Za-z0-9-]*)=(.*)", text, re.DOTALL)
    return f"{match.group(1)} {match.group(2)}" if match else text


def flag(option: str) -> str:
    """The option's flag: ``-l`` for ``-l core=1`` and ``-lcore=1``, ``--resource`` for ``--resource x``."""
    head = option.split(None, 1)[0] if option else ""
    if head.startswith("--"):
        return head
    return head[:2]


def is_managed(option: str) -> bool:
    head = flag(option)
    return any(head in (short, long) for short, long in MANAGED.items())


def native_options(options: list[str]) -> list[str]:
    """The user's options, normalised, without those mlxcore manages (warned about)."""
    kept = []
    for option in options:
        if "\n" in option or "\r" in option:
            raise ConfigError(f"mlx.scheduler.options: {option!r} holds a newline (one OAR option per item)")
        text = normalise(option)
        if not text:
            continue
        if not text.startswith("-"):
            raise ConfigError(f"mlx.scheduler.options: {option!r} is not an oarsub option (e.g. '-t besteffort')")
        if is_managed(text):
            log.warning("ignoring OAR option %r: mlxcore sets the output files, directory and arrays itself", option)
            continue
        kept.append(text)
    return kept


def job_types(options: list[str]) -> set[str]:
    """The job types the options ask for (``-t besteffort``, ``--type idempotent``)."""
    types: set[str] = set()
    for option in options:
        if flag(option) in ("-t", "--type"):
            value = option[len(flag(option)):].strip()
            types.update(t for t in re.split(r"[\s,]+", value) if t)
    return types


def resource_request(generic: GenericOptions, walltime: str | None, natives: list[str]) -> list[str]:
    """Directive values for the generic options: one ``-l`` line (cores, gpus, walltime) and ``-q``."""
    parts = []
    if generic.gpus is not None:
        parts.append(f"gpu={positive(generic.gpus, 'gpus')}")
    if generic.cpus_per_task is not None:
        parts.append(f"core={positive(generic.cpus_per_task, 'cpus_per_task')}")
    values = []
    if parts or walltime:
        if any(flag(o) in ("-l", "--resource") for o in natives):
            raise ConfigError("give OAR resources either as mlx.scheduler.time/cpus_per_task/gpus or in a native "
                              "'-l' option, not both (OAR reads several -l options as alternatives)")
        request = ("/host=1/" + "/".join(parts)) if parts else ""
        if walltime:
            request += ("," if request else "") + f"walltime={walltime}"
        values.append(f"-l {request}")
    if generic.mem is not None:
        raise ConfigError("mlx.scheduler.mem: OAR has no memory request; select nodes by a property instead, "
                          "e.g. options: [\"-p memnode>=16000\"] (the property names are your cluster's)")
    if generic.partition is not None:
        queue = str(generic.partition)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", queue):
            raise ConfigError(f"mlx.scheduler.partition: {queue!r} is not an OAR queue name")
        values.append(f"-q {queue}")
    return values


def positive(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"mlx.scheduler.{key} must be a positive integer, got {value!r}")
    return value


def walltime(text: str | None) -> str | None:
    """The core's ``translate_time`` answer (``H:MM:SS``, or the user's text) checked and written as OAR's
    ``H:MM:SS``; ``None`` when no time was set."""
    if text is None:
        return None
    match = re.fullmatch(r"(?:(\d+):)?(\d{1,2}):(\d{2})", text.strip())
    if match is None:
        raise ConfigError(f"mlx.scheduler.time: {text!r} is not a duration; give minutes or H:MM:SS")
    hours, minutes, seconds = int(match.group(1) or 0), int(match.group(2)), int(match.group(3))
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def signal_number(value: Any) -> int | None:
    """The checkpoint signal (``USR2``, ``SIGUSR1``, ``12``) as OAR's ``--signal`` number; ``None``: no signal."""
    if value is None:
        return None
    text = str(value).upper()
    try:
        name = text if text.startswith("SIG") else f"SIG{text}"
        sig = signals.Signals(int(text)) if text.isdigit() else signals.Signals[name]
    except (KeyError, ValueError):
        sig = None
    if sig is None or sig.name[3:] not in STOP_SIGNALS:
        raise ConfigError(f"mlx.scheduler.signal: {value!r} is not a stop signal; valid: "
                          f"{', '.join(STOP_SIGNALS)} (or null for no checkpoint signal)")
    return int(sig)
