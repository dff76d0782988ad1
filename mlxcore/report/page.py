"""The report's HTML: Bokeh's standalone page (:func:`bokeh.embed.file_html` with
:data:`bokeh.resources.INLINE`, which inlines BokehJS from the installed wheel) around mlxcore's own sections,
style and script (``report.js``, read from this package). Nothing in the page names a URL to load: opened from
disk, it makes no request.
"""

from __future__ import annotations

import json
from html import escape
from importlib import resources
from typing import Any

from .data import RunsData

STYLE = """
:root { --fg:#1d232b; --muted:#5b6675; --line:#d7dce2; --bg:#fff; --soft:#f4f6f8; }
* { box-sizing: border-box; }
html, body { height: auto; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); margin: 0; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 20px 40px; }
h1 { font-size: 22px; margin: 4px 0 2px; } h2 { font-size: 17px; margin: 28px 0 8px; }
p.meta, .note { color: var(--muted); margin: 2px 0; overflow-wrap: anywhere; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--soft); padding: 8px 10px; border-radius: 4px; white-space: pre-wrap;
  overflow-wrap: anywhere; margin: 6px 0; }
.totals { border-collapse: collapse; margin: 6px 0; }
.totals th, .totals td { border-bottom: 1px solid var(--line); padding: 3px 12px 3px 0; text-align: left; }
.totals td.num { text-align: right; }
form#filter-form { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 6px 0 8px; }
form#filter-form label { font-weight: 600; }
#filter { flex: 1 1 420px; min-width: 0; font: 13px ui-monospace, Menlo, Consolas, monospace; padding: 5px 8px;
  border: 1px solid #9aa4b1; border-radius: 4px; }
#filter[aria-invalid="true"] { border-color: #c62828; outline-color: #c62828; }
#filter-status { color: var(--muted); } #filter-status.bad { color: #c62828; }
button { font: inherit; }
form#filter-form button { padding: 4px 12px; border: 1px solid #9aa4b1; border-radius: 4px; background: var(--soft); }
.scroll { overflow: auto; max-height: 560px; border: 1px solid var(--line); border-radius: 4px; }
.scroll:focus { outline: 2px solid #1a73e8; }
table#runs { border-collapse: collapse; width: 100%; font-size: 13px; }
#runs th { position: sticky; top: 0; background: #eef1f4; text-align: left; white-space: nowrap; padding: 0;
  border-bottom: 1px solid var(--line); }
#runs th button { border: 0; background: none; padding: 5px 8px; width: 100%; text-align: left; cursor: pointer;
  font-weight: 600; }
#runs th button:focus-visible { outline: 2px solid #1a73e8; outline-offset: -2px; }
#runs th[aria-sort="ascending"] button::after { content: " \\25B2"; }
#runs th[aria-sort="descending"] button::after { content: " \\25BC"; }
#runs td { padding: 3px 8px; border-bottom: 1px solid #eceff2; white-space: nowrap; max-width: 260px;
  overflow: hidden; text-overflow: ellipsis; }
#runs td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; }
.s-COMPLETE { color: #1b5e20; background: #e8f5e9; } .s-FAILED { color: #b71c1c; background: #ffebee; }
.s-DEAD { color: #fff; background: #6d4c41; } .s-TIMEOUT { color: #8a4b00; background: #fff3e0; }
.s-CANCELLED { color: #455a64; background: #eceff1; } .s-PRUNED { color: #4a148c; background: #f3e5f5; }
.s-RUNNING { color: #0d47a1; background: #e3f2fd; } .s-SUBMITTED, .s-PENDING { color: #01579b; background: #e1f5fe; }
.s-INTERRUPTED, .s-PREEMPTED { color: #6d4c00; background: #fff8e1; }
span.status { padding: 0 6px; border-radius: 3px; }
details { border: 1px solid var(--line); border-radius: 4px; padding: 4px 10px; margin: 6px 0; }
summary { cursor: pointer; overflow-wrap: anywhere; }
.plot { width: 100%; min-width: 0; }
"""

SECTIONS = """
<main>
  <header>
    <h1>{title}</h1>
    <p class="meta">{subtitle}</p>
  </header>
  <section aria-labelledby="h-totals"><h2 id="h-totals">Totals by status</h2>{totals}</section>
  <section aria-labelledby="h-runs">
    <h2 id="h-runs">Runs</h2>
    <form id="filter-form" role="search">
      <label for="filter">Filter</label>
      <input id="filter" name="filter" type="search" autocomplete="off" spellcheck="false"
        placeholder="config.optimizer.lr &lt;= 0.01 &amp; status == 'COMPLETE'" aria-describedby="filter-status">
      <button type="submit">Apply</button>
      <output id="filter-status" aria-live="polite"></output>
    </form>
    <p class="note">MLXP's filter language, as <code>Reader.filter</code> reads it: <code>== != &lt; &lt;= &gt;
      &gt;= in &amp; | ~ ( )</code>, over every column of the runs (<code>config.*</code>, <code>info.*</code>,
      metric summaries). Enter applies it; the column headers sort.</p>
    <div class="scroll" tabindex="0" role="region" aria-label="runs table">
      <table id="runs"><thead><tr>{headers}</tr></thead><tbody></tbody></table>
    </div>
  </section>
  <section aria-labelledby="h-curves" class="plot">
    <h2 id="h-curves">Curves</h2>
    <p class="note">{curves_note}</p>
    {plot}
  </section>
  <section aria-labelledby="h-failures"><h2 id="h-failures">Failures</h2>{failures}</section>
</main>
"""

TEMPLATE = """{% extends base %}
{% from macros import embed %}
{% block preamble %}<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{{ report_style }}</style>{% endblock %}
{% block contents %}{{ report_head }}{% for doc in docs %}{% for root in doc.roots %}{{ embed(root) }}{% endfor %}
{% endfor %}{{ report_tail }}{% endblock %}
{% block postamble %}<script type="application/json" id="mlx-data">{{ report_data }}</script>{% endblock %}
{% block inner_body %}{{ super() }}<script>{{ report_script }}</script>{% endblock %}
"""


def script() -> str:
    return resources.files("mlxcore.report").joinpath("report.js").read_text(encoding="utf-8")


def data_json(data: RunsData) -> str:
    """The runs for the page's script; ``<`` escaped so that no text can close the ``<script>`` element."""
    text = json.dumps({"count": data.count, "columns": data.columns, "shown": data.shown},
                      separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _hours(total: float, known: int, runs: int, clock: bool = False) -> str:
    if not known:
        return "\N{EN DASH}"
    if clock and total < 60:
        shown = f"{total:.1f} s"
    elif clock:
        seconds = round(total)
        shown = f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    else:
        shown = f"{total:.2f}"
    return shown if known == runs else f"{shown} ({known}/{runs})"


def totals_html(data: RunsData) -> str:
    rows = []
    for t in data.totals:
        status = escape(t["status"])
        rows.append(f'<tr><td><span class="status s-{status}">{status}</span></td><td class="num">{t["runs"]}</td>'
                    f'<td class="num">{_hours(t["duration_s"], t["duration_s_known"], t["runs"], clock=True)}</td>'
                    f'<td class="num">{_hours(t["cpu_hours"], t["cpu_hours_known"], t["runs"])}</td>'
                    f'<td class="num">{_hours(t["gpu_hours"], t["gpu_hours_known"], t["runs"])}</td></tr>')
    return ('<table class="totals"><thead><tr><th scope="col">status</th><th scope="col">runs</th>'
            '<th scope="col">duration</th><th scope="col">CPU-hours</th><th scope="col">GPU-hours</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def failures_html(data: RunsData) -> str:
    if not data.failures_total:
        return '<p class="note">No run FAILED, DEAD, TIMEOUT or CANCELLED.</p>'
    parts = [f'<p class="note">{data.failures_total} run(s) FAILED, DEAD, TIMEOUT or CANCELLED'
             + (f"; the first {len(data.failures)} are listed" if len(data.failures) < data.failures_total else "")
             + ".</p>"]
    if data.reruns:
        parts.append('<p>Run them again (each sweep\'s own command, with <code>+mlx.rerun_failed=true</code>: only '
                     'its FAILED, INTERRUPTED, CANCELLED, TIMEOUT, PREEMPTED and DEAD points run, back into their '
                     'own directories):</p>')
        parts.extend(f'<pre class="rerun">{escape(c)}</pre>' for c in data.reruns)
    for f in data.failures:
        status = escape(f["status"])
        head = f'run {f["log_id"]} <span class="status s-{status}">{status}</span> {escape(f["error"] or "")}'
        body = []
        if f["traceback"]:
            body.append(f"<p class=\"note\">end of the traceback</p><pre>{escape(f['traceback'])}</pre>")
        if f["stderr"]:
            body.append(f"<p class=\"note\">end of log.stderr</p><pre>{escape(f['stderr'])}</pre>")
        if not body:
            body.append('<p class="note">no error recorded and log.stderr is empty</p>')
        where = f'<p class="note">{escape(str(f["dir"] or ""))} on {escape(str(f["host"] or "?"))}</p>'
        parts.append(f'<details class="failure" data-log-id="{f["log_id"]}"><summary>{head}</summary>'
                     f'{where}{"".join(body)}</details>')
    return "".join(parts)


def render(plot: Any, data: RunsData, title: str, subtitle: str, curves_note: str) -> str:
    """The whole page, as text (``plot``: a Bokeh model, or ``None`` when there is no curve: then no BokehJS)."""
    marker = '<div id="mlx-plot-slot"></div>'
    headers = "".join(f'<th scope="col"><button type="button">{escape(name)}</button></th>' for name in data.shown)
    sections = SECTIONS.format(title=escape(title), subtitle=escape(subtitle), totals=totals_html(data),
                               headers=headers, curves_note=escape(curves_note), failures=failures_html(data),
                               plot=marker)
    head, tail = sections.split(marker)
    variables = {"report_style": STYLE, "report_data": data_json(data), "report_script": script(),
                 "report_head": head, "report_tail": tail}
    if plot is None:
        return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f'<title>{escape(title)}</title>\n<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'\n<style>{STYLE}</style>\n</head>\n<body>\n{head}{tail}\n'
                f'<script type="application/json" id="mlx-data">{variables["report_data"]}</script>\n'
                f'<script>{variables["report_script"]}</script>\n</body>\n</html>\n')
    from bokeh.embed import file_html
    from bokeh.resources import INLINE
    from jinja2 import Template

    return file_html(plot, resources=INLINE, title=title, template=Template(TEMPLATE), template_variables=variables)
