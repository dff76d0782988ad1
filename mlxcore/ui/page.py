"""The live page: the report's style around an empty ``#live`` element that ``ui.js`` fills from ``/api/runs``
(the report's sections, run by the report's own ``report.js``, and the plot embedded by BokehJS), and the SQL
box. Every URL in it is relative to the server: with a token, the cookie set by the first answer carries it."""

from __future__ import annotations

from html import escape

from ..report.page import STYLE

UI_STYLE = """
#sql-area { max-width: 1240px; margin: 0 auto; padding: 0 20px 40px; }
#live-bar { position: sticky; top: 0; z-index: 2; background: #1d232b; color: #fff; font-size: 12px;
  padding: 3px 20px; display: flex; gap: 16px; }
#live-bar .bad { color: #ffb4a8; }
form#sql-form { display: flex; gap: 8px; align-items: flex-start; flex-wrap: wrap; margin: 6px 0 8px; }
form#sql-form label { font-weight: 600; }
#sql { flex: 1 1 560px; min-width: 0; font: 13px ui-monospace, Menlo, Consolas, monospace; padding: 5px 8px;
  border: 1px solid #9aa4b1; border-radius: 4px; }
#sql[aria-invalid="true"] { border-color: #c62828; }
form#sql-form button { padding: 4px 12px; border: 1px solid #9aa4b1; border-radius: 4px; background: var(--soft); }
#sql-status { display: block; color: var(--muted); margin: 4px 0; overflow-wrap: anywhere; }
#sql-status.bad { color: #c62828; }
table#sql-result { border-collapse: collapse; font-size: 13px; width: 100%; }
#sql-result th { position: sticky; top: 0; background: #eef1f4; text-align: left; padding: 4px 8px; }
#sql-result td { padding: 3px 8px; border-bottom: 1px solid #eceff2; white-space: nowrap; max-width: 320px;
  overflow: hidden; text-overflow: ellipsis; }
#sql-result td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>{style}</style>
<script src="static/bokeh.min.js"></script>
</head>
<body>
<div id="live-bar"><span>mlxcore ui: live, read-only</span><output id="live-status" aria-live="polite">loading
</output></div>
<div id="live"></div>
<div id="sql-area">
  <section aria-labelledby="h-sql">
    <h2 id="h-sql">SQL</h2>
    <form id="sql-form">
      <label for="sql">Query</label>
      <textarea id="sql" name="sql" rows="3" spellcheck="false" aria-describedby="sql-status"
        >SELECT status, count(*) AS runs FROM runs GROUP BY ALL ORDER BY runs DESC</textarea>
      <button type="submit">Run</button>
    </form>
    <p class="note">One read-only query (<code>SELECT</code> or <code>WITH</code>) over <code>runs</code>, the stream
      tables and <code>skipped_lines</code>, with the reader's timeout and memory limit; Ctrl+Enter runs it.</p>
    <output id="sql-status" aria-live="polite"></output>
    <div class="scroll" tabindex="0" role="region" aria-label="SQL result"><table id="sql-result"></table></div>
  </section>
</div>
<script src="static/ui.js"></script>
</body>
</html>
"""


def page_html(title: str) -> str:
    return PAGE.format(title=escape(title), style=STYLE + UI_STYLE)
