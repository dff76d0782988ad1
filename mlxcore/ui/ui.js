/* mlxcore ui: polls api/runs every 2 s; when the views changed, puts the report's sections in #live, runs the
 * report's own report.js over them (the runs table, its sort and filter box), embeds the plot with BokehJS, and
 * keeps what the reader had chosen (the filter, the sort, the focus). The SQL box posts to api/sql. */
"use strict";
(function () {
  const POLL_MS = 2000;
  const live = document.getElementById("live");
  const status = document.getElementById("live-status");
  let version = 0, busy = false, reportSource = null, manager = null;

  async function json(url, init) {
    const answer = await fetch(url, Object.assign({ credentials: "same-origin", cache: "no-store" }, init || {}));
    const text = await answer.text();
    let body;
    try { body = JSON.parse(text); } catch (e) { throw new Error(`${answer.status}: ${text.trim().slice(0, 200)}`); }
    return [answer.status, body];
  }

  function removePlot() {
    if (manager === null) return;
    for (const view of manager.roots) {
      const doc = view.model.document;
      view.remove();
      const at = doc ? Bokeh.documents.indexOf(doc) : -1;
      if (at >= 0) Bokeh.documents.splice(at, 1);
    }
    manager = null;
  }

  function kept() {
    const box = document.getElementById("filter");
    const sorted = document.querySelector("#runs th[aria-sort]");
    return {
      filter: box ? box.value : "",
      focused: box !== null && document.activeElement === box,
      selection: box ? [box.selectionStart, box.selectionEnd] : null,
      sortName: sorted ? sorted.textContent : null,
      sortDir: sorted ? sorted.getAttribute("aria-sort") : null,
    };
  }

  function restore(was) {
    const box = document.getElementById("filter");
    if (!box || !window.mlxReport) return;
    if (was.sortName !== null) {
      const th = [...document.querySelectorAll("#runs th")].find((h) => h.textContent === was.sortName);
      if (th) {
        th.querySelector("button").click();
        if (was.sortDir === "descending") th.querySelector("button").click();
      }
    }
    if (was.filter) {
      box.value = was.filter;
      window.mlxReport.apply(was.filter);
    }
    if (was.focused) {
      box.focus();
      if (was.selection) box.setSelectionRange(was.selection[0], was.selection[1]);
    }
  }

  async function render(view) {
    const was = kept();
    live.style.minHeight = live.offsetHeight + "px"; // no jump while the plot is drawn again
    removePlot();
    window.mlxReport = undefined;
    live.innerHTML = view.html;
    if (view.data !== null) {
      const holder = document.createElement("script");
      holder.type = "application/json";
      holder.id = "mlx-data";
      holder.textContent = view.data;
      live.appendChild(holder);
      if (reportSource === null) {
        const answer = await fetch("static/report.js", { credentials: "same-origin" });
        reportSource = await answer.text();
      }
      Function(reportSource)(); // the report's script, over the new table
      restore(was);
    }
    const slot = document.getElementById("mlx-plot-slot");
    if (view.plot && slot) manager = await Bokeh.embed.embed_item(view.plot, slot);
    live.style.minHeight = "";
    version = view.version;
    window.mlxLive = { version: view.version, runs: view.runs };
  }

  async function poll() {
    if (busy || document.hidden) return; // a tab in the background asks nothing; it catches up when shown
    busy = true;
    try {
      const [code, view] = await json(`api/runs?since=${version}`);
      if (code !== 200) throw new Error(`${code}: ${view.error || "refused"}`);
      if (view.version !== version) await render(view);
      status.className = "";
      status.textContent = `${window.mlxLive ? window.mlxLive.runs : 0} run(s); checked ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      status.className = "bad";
      status.textContent = `the server did not answer (${err.message}); trying again`;
    } finally {
      busy = false;
    }
  }

  // -- the SQL box -------------------------------------------------------------------------------------------
  const form = document.getElementById("sql-form");
  const sql = document.getElementById("sql");
  const sqlStatus = document.getElementById("sql-status");
  const result = document.getElementById("sql-result");
  function cell(tag, text) {
    const node = document.createElement(tag);
    node.textContent = text === null ? "–" : String(text);
    if (typeof text === "number") node.className = "num";
    if (tag === "th") node.scope = "col";
    if (node.textContent.length > 30) node.title = node.textContent;
    return node;
  }
  async function runSql() {
    sqlStatus.className = "";
    sqlStatus.textContent = "running…";
    let code, answer;
    try {
      [code, answer] = await json("api/sql", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sql: sql.value }) });
    } catch (err) {
      code = 0; answer = { error: `the server did not answer (${err.message})` };
    }
    result.replaceChildren();
    if (code !== 200 || answer.error) {
      sql.setAttribute("aria-invalid", "true");
      sqlStatus.className = "bad";
      sqlStatus.textContent = answer.error || `error ${code}`;
      return;
    }
    sql.removeAttribute("aria-invalid");
    const head = result.createTHead().insertRow();
    answer.columns.forEach((name) => head.appendChild(cell("th", name)));
    const body = result.createTBody();
    for (const row of answer.rows) {
      const tr = body.insertRow();
      row.forEach((v) => tr.appendChild(cell("td", v)));
    }
    sqlStatus.textContent = `${answer.count} row(s)` + (answer.note ? `; ${answer.note}` : "");
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); runSql(); });
  sql.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); runSql(); }
  });

  poll();
  setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", poll);
})();
