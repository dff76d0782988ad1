"""``benchmarks/RESULTS.md``: one ``## <section>`` per suite, each rewritten only by the run that measured it.

Why sections: the core benchmarks, the reader's and the cluster submissions are measured by different people at
different times; a run rewrites the sections of the benchmarks it ran and leaves the others alone. Inside a
section, everything from ``### Analysis`` on is written by hand and kept across rewrites. When only some of a
section's benchmarks were run, the others' rows come from their last saved figures (``benchmarks/out/<name>.json``),
marked with the date they were measured.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import OUT, ROOT, Figure, fmt, fmt_ratio, load_figures

RESULTS = ROOT / "RESULTS.md"
KEPT_SUBSECTION = "### Analysis"


def markdown_table(rows: Sequence[tuple[Figure, str]]) -> str:
    """The results table: medians, the floor measured in the same session, ratios, MLXP, goals.

    ``rows`` pairs each figure with a remark for its first column (empty, or when it was measured)."""
    lines = [
        "| Benchmark | n | mlxcore | Floor (same session) | mlxcore / floor | MLXP | MLXP / its floor | MLXP / mlxcore "
        "| Goal |",
        "|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for f, remark in rows:
        floor = f"{f.floor_label}: {fmt(f.floor, f.unit)}" if f.floor is not None else "-"
        mlxp = fmt(f.mlxp, f.unit) if f.mlxp is not None else "-"
        if f.mlxp is not None and f.mlxp_label != "MLXP":
            mlxp = f"{mlxp} ({f.mlxp_label})"
        goal = f"{f.goal}: **{'met' if f.met else 'MISSED'}**" if f.goal and f.met is not None else ""
        name = f"{f.metric}{f' ({remark})' if remark else ''}"
        lines.append(f"| {name} | {f.repeats} | {fmt(f.value, f.unit)} | {floor} | {fmt_ratio(f.ratio)} | {mlxp} "
                     f"| {fmt_ratio(f.mlxp_ratio)} | {fmt_ratio(f.mlxp_over_mlxcore)} | {goal} |")
    return "\n".join(lines)


def machine_lines(header: dict[str, Any], mlxp: dict[str, str] | None) -> list[str]:
    packages = ", ".join(f"{k} {v}" for k, v in header.get("packages", {}).items())
    lines = [
        f"- Machine: `nproc` {header['nproc']}, {header['cpu']} (`/proc/cpuinfo` model name), {header['memory']} RAM, "
        f"{header.get('os', '?')}, Linux {header['kernel']}; load average {header['loadavg']} at the start "
        "(a shared VM: other jobs and a SLURM/OAR test cluster ran at the same time).",
        f"- Python {header['python']} (`{header['python_executable']}`); {packages}; "
        f"git commit {header['mlxcore_commit']} plus the working tree; {header.get('bytecode', '')}.",
    ]
    if mlxp:
        others = ", ".join(f"{k} {v}" for k, v in mlxp.items() if k != "mlxp")
        lines.append(f"- MLXP {mlxp.get('mlxp', '?')} in `benchmarks/.venv-mlxp` (same base interpreter; {others}).")
    else:
        lines.append("- MLXP: not measured in this run (unavailable or `--no-mlxp`).")
    return lines


def section_rows(names: Sequence[str], fresh: dict[str, list[Figure]]) -> list[tuple[Figure, str]]:
    """A section's table rows: ``names`` are its benchmarks in order; those absent from ``fresh`` (not run now)
    contribute their last saved figures, dated."""
    rows: list[tuple[Figure, str]] = []
    for name in names:
        if name in fresh:
            rows += [(f, "") for f in fresh[name]]
        elif (OUT / f"{name}.json").exists():
            old_header, old = load_figures(name)
            rows += [(f, f"from an earlier run, {old_header['date'][:16]}") for f in old]
    return rows


def goals_line(figures: Sequence[Figure]) -> str:
    goals = [f for f in figures if f.goal and f.met is not None]
    return "Goals: " + "; ".join(f"{f.metric}: {f.goal}, **{'met' if f.met else 'MISSED'}** ({fmt(f.value, f.unit)})"
                                 for f in goals) + "." if goals else ""


def section_text(title: str, rows: Sequence[tuple[Figure, str]], header: dict[str, Any], command: str,
                 elapsed: float, mlxp: dict[str, str] | None) -> str:
    """A section: when and how it was measured, the table, goals, notes."""
    figures = [f for f, _ in rows]
    lines = [
        title,
        "",
        f"Measured {header['date'][:10]} ({header['date'][11:16]} {header['date'][19:] or 'UTC'}) with "
        f"`{command}` ({elapsed:.0f} s in all).",
        "",
        *machine_lines(header, mlxp),
        "",
        "Every figure is a median over `n` calls, candidates and floors interleaved round by round; lower is better. "
        "Ratios: mlxcore / its floor, MLXP / the same floor measured with MLXP's interpreter, MLXP / mlxcore.",
        "",
        markdown_table(rows),
        "",
    ]
    if goals_line(figures):
        lines += [goals_line(figures), ""]
    notes = [f"- {f.metric}: {f.note}" for f in figures if f.note]
    if notes:
        lines += ["Notes:", "", *notes, ""]
    return "\n".join(lines)


def write_section(title: str, section: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section headed ``title``; keep its ``### Analysis`` and every other section.

    Several suites may finish at once: the read-modify-write holds an exclusive lock (``out/.results.lock``)."""
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / ".results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _replace_section(title, section, path)


def _replace_section(title: str, section: str, path: Path) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == title), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        old = lines[start:end]
        kept = next((i for i, line in enumerate(old) if line.rstrip() == KEPT_SUBSECTION), None)
        analysis = "\n" + "".join(old[kept:]).rstrip("\n") + "\n" if kept is not None else ""
        body = section.rstrip("\n") + "\n" + analysis
        rest = "".join(lines[end:])
        new = "".join(lines[:start]) + body + ("\n" + rest if rest else "")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(new)
    os.chmod(tmp, 0o644)  # mkstemp makes it 0600: RESULTS.md is for everyone to read
    os.replace(tmp, path)
