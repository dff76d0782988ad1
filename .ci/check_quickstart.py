"""What the README's first command (scripts/quickstart.sh) must produce, checked by .ci/run.

    python .ci/check_quickstart.py first OUTPUT    # after the first run on a fresh clone
    python .ci/check_quickstart.py again OUTPUT    # after running it a second time

OUTPUT is what the command printed. Run from the clone's root with the Python the command installed into.
Exits 1 with one line per broken promise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path("examples/quickstart")
SETTINGS = {(lr, momentum) for lr in (0.01, 0.05) for momentum in (0.0, 0.9)}  # (lr, momentum) of the sweep


def runs() -> list[dict]:
    result = subprocess.run([sys.executable, "-m", "mlxcore", "status", str(EXAMPLE / "logs"), "--json"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"check: mlxcore status failed ({result.returncode}): {result.stderr.strip()}")
    return json.loads(result.stdout)


def comparison_rows(output: str) -> list[list[str]]:
    """The rows of the table printed under the comparison heading (up to the next heading)."""
    lines = output.split("== which optimizer settings won", 1)[-1].splitlines()[1:]
    table = []
    for line in lines:
        if line.startswith("=="):
            break
        table.append(line.split())
    return table


def report_problems(output: str) -> list[str]:
    """The HTML report: written, its path printed, one self-contained file holding the 12 runs and 4 curves."""
    report = EXAMPLE / "report.html"
    found = []
    if f"report in {report.resolve()}" not in output:
        found.append(f"the quickstart did not print the report's path ({report.resolve()})")
    if not report.is_file():
        return [*found, f"{report} is missing"]
    text = report.read_text(encoding="utf-8")
    data = text.split('<script type="application/json" id="mlx-data">', 1)[-1].split("</script>", 1)[0]
    try:
        count = json.loads(data)["count"]
    except (ValueError, KeyError):
        count = None
    if count != 12:
        found.append(f"{report} should hold the 12 runs, holds {count}")
    if "<script src" in text or "<link " in text:
        found.append(f"{report} loads a script or style from elsewhere: it must be self-contained")
    if "wrote report.html (12 run(s), 4 curve(s)" not in output:
        found.append("mlxcore report did not say it wrote 12 runs and 4 curves")
    return found


def problems(stage: str, output: str) -> list[str]:
    found = []
    rows = runs()
    statuses = sorted(row["status"] for row in rows)
    if statuses != ["COMPLETE"] * 12:
        found.append(f"expected 12 COMPLETE runs, found {statuses}")
    table = comparison_rows(output)
    if not table or "mean" not in table[0]:
        found.append("the comparison table (with a mean column) was not printed")
    else:
        settings = {(float(row[0]), float(row[1])) for row in table[1:] if len(row) > 2}
        if settings != SETTINGS:
            found.append(f"the comparison should have one row per setting {sorted(SETTINGS)}, has {sorted(settings)}")
    plot = EXAMPLE / "curves.png"
    if not plot.is_file() or plot.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n" or plot.stat().st_size < 5000:
        found.append(f"{plot} is missing or not a PNG plot")
    found.extend(report_problems(output))
    if stage == "first" and "creating" not in output:
        found.append("the first run did not create its virtual environment (was one already there?)")
    if stage == "again":
        if "installing" in output or "creating" in output:
            found.append("the second run installed again although nothing changed")
        if "quickstart is up to date" not in output:
            found.append("the second run did not say that the install was up to date")
        if len(rows) != 12:
            found.append(f"the second run started new runs: {len(rows)} runs")
    return found


def main() -> int:
    stage, output_file = sys.argv[1], Path(sys.argv[2])
    found = problems(stage, output_file.read_text())
    for problem in found:
        print(f"check_quickstart ({stage}): {problem}", file=sys.stderr)
    if not found:
        print(f"check_quickstart ({stage}): ok")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
