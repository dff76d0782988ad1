/* mlxcore report: the runs table (sortable, keyboard-usable) and its filter box, which reads MLXP's filter
 * language (mlxcore/reader/filter_grammar.py) and compares values as mlxcore/reader/filters.py does, so that a
 * filter selects here exactly the runs Reader.filter selects. Numbers are doubles or BigInts (exact integers). */
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("mlx-data").textContent);
  const HUGE = (1n << 127n) - 1n;
  const INT_TEXT = /^-?(0|[1-9][0-9]*)$/;
  const NUM_TEXT = /^(?:-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|-?(NaN|nan|Infinity|inf))$/;
  const WORDS = { true: true, True: true, false: false, False: false, null: null, None: null };
  const KEYWORDS = ["not", "and", "or", "is", "in", "select"];
  const OPS = ["==", "!=", "<=", ">=", "<", ">"];
  const TOKEN = /(\s+)|('(?:[^'\\]|\\[\s\S])*'|"(?:[^"\\]|\\[\s\S])*")|([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)|([\p{L}\p{M}_][\p{L}\p{M}\p{N}_]*(?:[.-][\p{L}\p{M}\p{N}_]+)*)|(==|!=|<=|>=|<>|&&|\|\||--|[<>&|~()[\],])/uy;
  const REFUSED = ["<>", "&&", "||", "--"];

  // -- values ------------------------------------------------------------------------------------------------
  function toDouble(text) {
    const t = text.replace(/^(-?)(nan|NaN)$/, "NaN").replace(/^(-?)(inf|Infinity)$/, "$1Infinity");
    return Number(t);
  }
  function decodeColumn(col) {
    const one = (v) => {
      if (v === null || v === undefined) return null;
      if (col.k === "int") return BigInt(v);
      if (col.k === "float") return typeof v === "string" ? toDouble(v) : v;
      return v;
    };
    const n = DATA.count;
    return "v" in col ? col.v.map(one) : new Array(n).fill(one(col.c));
  }
  const COLUMNS = {};
  const LOWER = {};
  for (const [name, col] of Object.entries(DATA.columns)) {
    COLUMNS[name] = { kind: col.k, values: decodeColumn(col) };
    LOWER[name.toLowerCase()] = name;
  }

  function cmpNum(a, b) { // exact: -1, 0, 1, or NaN when unordered (NaN)
    if (typeof a === "bigint" && typeof b === "bigint") return a < b ? -1 : a > b ? 1 : 0;
    if (typeof a === "number" && typeof b === "number") return isNaN(a) || isNaN(b) ? NaN : a < b ? -1 : a > b ? 1 : 0;
    if (typeof a === "bigint") { const r = cmpNum(b, a); return isNaN(r) ? NaN : -r; }
    if (isNaN(a)) return NaN;
    if (a === Infinity) return 1;
    if (a === -Infinity) return -1;
    const f = Math.floor(a), fb = BigInt(f);
    if (fb !== b) return fb < b ? -1 : 1;
    return a === f ? 0 : 1;
  }
  function cmpStr(a, b) { // by code point, as Python and DuckDB (UTF-8 bytes)
    if (a === b) return 0;
    const A = Array.from(a), B = Array.from(b);
    for (let i = 0; i < Math.min(A.length, B.length); i++) {
      const x = A[i].codePointAt(0), y = B[i].codePointAt(0);
      if (x !== y) return x < y ? -1 : 1;
    }
    return A.length < B.length ? -1 : A.length > B.length ? 1 : 0;
  }
  function holds(op, c) {
    if (isNaN(c)) return false;
    return op === "<" ? c < 0 : op === "<=" ? c <= 0 : op === ">" ? c > 0 : c >= 0;
  }
  function asNumber(v) { return typeof v === "boolean" ? BigInt(v ? 1 : 0) : v; }

  // what a JSON value is read as: ["int", BigInt], ["num", double], ["flag", 0n|1n] or null (none of these)
  function decoded(t) {
    if (t === null) return null;
    if (INT_TEXT.test(t)) { const n = BigInt(t); if (n <= HUGE && n >= -HUGE - 1n) return ["int", n]; }
    if (NUM_TEXT.test(t)) return ["num", toDouble(t)];
    if (t === "true") return ["flag", 1n];
    if (t === "false") return ["flag", 0n];
    return null;
  }

  function member(kind, v, values) {
    const numbers = values.filter((x) => typeof x === "boolean" || typeof x === "bigint" || typeof x === "number");
    const strings = values.filter((x) => typeof x === "string");
    const integers = [], doubles = [];
    for (const raw of numbers) {
      const x = asNumber(raw);
      if (typeof x === "bigint") {
        if (x <= HUGE && x >= -HUGE) integers.push(x);
        const d = Number(x);
        if (isFinite(d) && BigInt(d) === x) doubles.push(d);
      } else {
        doubles.push(x);
        if (isFinite(x) && Number.isInteger(x) && BigInt(x) <= HUGE && BigInt(x) >= -HUGE) integers.push(BigInt(x));
      }
    }
    const inInts = (n) => integers.some((i) => i === n);
    const inDoubles = (d) => doubles.some((x) => x === d);
    if (values.some((x) => x === null)) {
      if (kind === "json" ? v === null || v[1] === "NULL" : v === null) return true;
    }
    if (v === null) return false;
    if (numbers.length) {
      if (kind === "bool" && inInts(v ? 1n : 0n) && (inInts(0n) || inInts(1n))) return true;
      if (kind === "int" && inInts(v)) return true;
      if (kind === "float" && inDoubles(v)) return true;
      if (kind === "json") {
        const d = decoded(v[0]);
        if (d && (d[0] === "num" ? inDoubles(d[1]) : inInts(d[1]))) return true;
      }
    }
    if (strings.length) {
      if (kind === "text" && strings.includes(v)) return true;
      if (kind === "json" && v[1] === "VARCHAR" && strings.includes(v[2])) return true;
    }
    return false;
  }

  function ordered(kind, v, op, value) {
    if (value === null || v === null) return false;
    if (typeof value === "string") {
      if (kind === "text") return holds(op, cmpStr(v, value));
      if (kind === "json") return v[1] === "VARCHAR" && v[2] !== null && holds(op, cmpStr(v[2], value));
      return false;
    }
    const lit = asNumber(value);
    if (kind === "bool") return holds(op, cmpNum(v ? 1n : 0n, lit));
    if (kind === "int" || kind === "float") return holds(op, cmpNum(v, lit));
    if (kind === "json") { const d = decoded(v[0]); return d !== null && holds(op, cmpNum(d[1], lit)); }
    return false;
  }

  // -- the grammar -------------------------------------------------------------------------------------------
  class FilterError extends Error {}
  function fail(text, pos, found, expected) {
    return new FilterError(`cannot parse filter: at column ${pos + 1}, found ${found}; expected ${expected}`);
  }
  function unescape(body) {
    return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|\n|[\s\S])/g, (m, code) => {
      const simple = { "\\": "\\", "'": "'", '"': '"', a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t",
        v: "\v", "\n": "" };
      if (code in simple) return simple[code];
      if ("xuU".includes(code[0]) && code.length > 1) {
        const n = parseInt(code.slice(1), 16);
        return n <= 0x10ffff ? String.fromCodePoint(n) : m;
      }
      if (/^[0-7]/.test(code)) return String.fromCodePoint(parseInt(code, 8));
      return m;
    });
  }
  function tokenize(text) {
    const tokens = [];
    let pos = 0;
    while (pos < text.length) {
      TOKEN.lastIndex = pos;
      const m = TOKEN.exec(text);
      if (!m || (m[5] && REFUSED.includes(m[5]))) {
        const ch = text[pos];
        const found = ch === "'" || ch === '"' ? `a string opened with ${ch} and never closed`
          : `'${m && m[5] ? m[5] : ch}', which is not part of the filter language`;
        tokens.push({ kind: "bad", start: pos, error: fail(text, pos, found, "== != < <= > >= in & | ~ ( ) names values") });
        return tokens;
      }
      const end = pos + m[0].length;
      if (m[3] !== undefined) {
        if (end < text.length && /[\p{L}\p{N}_.]/u.test(text[end])) {
          tokens.push({ kind: "bad", start: pos, error: fail(text, pos, `number '${m[3]}...'`, "a number such as 3, -0.5, 1e-2") });
          return tokens;
        }
        const value = /[.eE]/.test(m[3]) ? Number(m[3]) : BigInt(m[3]);
        tokens.push({ kind: "number", text: m[3], start: pos, value });
      } else if (m[2] !== undefined) {
        tokens.push({ kind: "string", text: m[2], start: pos, value: unescape(m[2].slice(1, -1)) });
      } else if (m[4] !== undefined) {
        tokens.push({ kind: "name", text: m[4], start: pos });
      } else if (m[5] !== undefined) {
        tokens.push({ kind: "op", text: m[5], start: pos });
      }
      pos = end;
    }
    tokens.push({ kind: "end", text: "", start: text.length });
    return tokens;
  }
  function parse(text) {
    if (text.length > 10000) throw new FilterError("filter longer than 10,000 characters refused");
    const tokens = tokenize(text);
    let at = 0, depth = 0;
    const token = () => { const t = tokens[at]; if (t.kind === "bad") throw t.error; return t; };
    const isOp = (s) => token().kind === "op" && token().text === s;
    const describe = (t) => t.kind === "end" ? "the end of the filter" : `${t.kind === "name" ? "name " : ""}'${t.text}'`;
    const refuse = (expected) => fail(text, token().start, describe(token()), expected);
    if (token().kind === "end") return null;
    function disjunction() {
      const items = [conjunction()];
      while (isOp("|")) { at++; items.push(conjunction()); }
      return items.length === 1 ? items[0] : { t: "or", items };
    }
    function conjunction() {
      const items = [negation()];
      while (isOp("&")) { at++; items.push(negation()); }
      return items.length === 1 ? items[0] : { t: "and", items };
    }
    function negation() {
      const t = token();
      if (t.kind === "op" && (t.text === "~" || t.text === "(")) {
        if (++depth > 50) throw fail(text, t.start, "more than 50 levels of '(' and '~'", "at most 50 nested levels");
        at++;
        let node;
        if (t.text === "~") node = { t: "not", item: negation() };
        else {
          node = disjunction();
          if (!isOp(")")) throw refuse(`')' closing the '(' at column ${t.start + 1}, '&' or '|'`);
          at++;
        }
        depth--;
        return node;
      }
      return comparison();
    }
    function value() {
      const t = token();
      if (t.kind === "string" || t.kind === "number") { at++; return t.value; }
      if (t.kind === "name" && t.text in WORDS) { at++; return WORDS[t.text]; }
      throw refuse("a value: a quoted string, a number, true, false or null");
    }
    function comparison() {
      const t = token();
      if (t.kind !== "name" || t.text in WORDS || KEYWORDS.includes(t.text.toLowerCase())) {
        throw refuse("a condition: a column name, '~' or '('");
      }
      at++;
      const op = token();
      if (op.kind === "op" && OPS.includes(op.text)) { at++; return { t: "cmp", name: t.text, op: op.text, value: value() }; }
      if (op.kind === "name" && op.text === "in") {
        at++;
        if (!isOp("[")) throw refuse("a list after 'in', e.g. [1, 2]");
        at++;
        const values = [];
        while (!isOp("]")) {
          values.push(value());
          if (isOp(",")) at++;
          else if (!isOp("]")) throw refuse("',' or ']' in the list");
        }
        at++;
        return { t: "in", name: t.text, values };
      }
      throw refuse("a comparison (== != < <= > >=) or 'in' after the column name");
    }
    const node = disjunction();
    if (token().kind !== "end") throw refuse("'&', '|', ')' or the end of the filter");
    return node;
  }

  function column(name) {
    const found = LOWER[name.toLowerCase()];
    if (found === undefined) throw new FilterError(`unknown column '${name}' in filter`);
    return COLUMNS[found];
  }
  function check(node) {
    if (node.t === "not") check(node.item);
    else if (node.t === "and" || node.t === "or") node.items.forEach(check);
    else column(node.name);
  }
  function test(node, i) {
    switch (node.t) {
      case "not": return !test(node.item, i);
      case "and": return node.items.every((n) => test(n, i));
      case "or": return node.items.some((n) => test(n, i));
    }
    const col = column(node.name);
    const v = col.values[i];
    if (node.t === "in") return member(col.kind, v, node.values);
    if (node.op === "==") return member(col.kind, v, [node.value]);
    if (node.op === "!=") return !member(col.kind, v, [node.value]);
    return ordered(col.kind, v, node.op, node.value);
  }
  /** The indexes of the runs ``text`` selects; throws a FilterError for a filter the reader refuses. */
  function select(text) {
    const tree = parse(text);
    const all = [...Array(DATA.count).keys()];
    if (tree === null) return all;
    check(tree);
    return all.filter((i) => test(tree, i));
  }

  // -- the table ---------------------------------------------------------------------------------------------
  const ids = COLUMNS.log_id.values;
  function show(v, kind) {
    if (v === null || v === undefined) return "–";
    if (kind === "json") return v[1] === "VARCHAR" ? v[2] : v[0];
    if (typeof v === "number") {
      if (!isFinite(v)) return String(v);
      return Number.isInteger(v) && Math.abs(v) < 1e6 ? String(v) : String(Number(v.toPrecision(4)));
    }
    return String(v);
  }
  function sortKey(v, kind) {
    if (v === null || v === undefined) return null;
    if (kind === "json") { const d = decoded(v[0]); return d ? d[1] : (v[2] ?? v[0]); }
    return typeof v === "boolean" ? BigInt(v ? 1 : 0) : v;
  }
  function compareKeys(a, b) {
    if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
    const an = typeof a !== "string", bn = typeof b !== "string";
    if (an && bn) { const c = cmpNum(a, b); return isNaN(c) ? (Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : -1) : c; }
    if (an !== bn) return an ? -1 : 1;
    return cmpStr(a, b);
  }
  const table = document.getElementById("runs");
  const body = table.tBodies[0];
  const rows = [];
  for (let i = 0; i < DATA.count; i++) {
    const tr = document.createElement("tr");
    for (const name of DATA.shown) {
      const col = COLUMNS[name];
      const td = document.createElement("td");
      const text = show(col.values[i], col.kind);
      td.textContent = text;
      if (text.length > 24) td.title = text;
      if (name === "status") { td.className = "status s-" + text; }
      else if (col.kind === "int" || col.kind === "float") td.className = "num";
      tr.appendChild(td);
    }
    tr.dataset.logId = String(ids[i]);
    rows.push(tr);
    body.appendChild(tr);
  }
  const headers = Array.from(table.tHead.rows[0].cells);
  let order = rows.map((_, i) => i);
  headers.forEach((th, c) => {
    th.querySelector("button").addEventListener("click", () => {
      const name = DATA.shown[c], col = COLUMNS[name];
      const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      headers.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      const keys = col.values.map((v) => sortKey(v, col.kind));
      order = order.slice().sort((a, b) => {
        const k = compareKeys(keys[a], keys[b]);
        return (keys[a] === null || keys[b] === null ? k : dir * k) || a - b;
      });
      for (const i of order) body.appendChild(rows[i]);
    });
  });

  const box = document.getElementById("filter");
  const status = document.getElementById("filter-status");
  function apply(text) {
    let chosen;
    try {
      chosen = new Set(select(text));
    } catch (err) {
      if (!(err instanceof FilterError)) throw err;
      box.setAttribute("aria-invalid", "true");
      status.textContent = err.message;
      status.className = "bad";
      return null;
    }
    box.removeAttribute("aria-invalid");
    rows.forEach((tr, i) => { tr.hidden = !chosen.has(i); });
    status.className = "";
    status.textContent = `${chosen.size} of ${DATA.count} runs`;
    return [...chosen].map((i) => Number(ids[i]));
  }
  document.getElementById("filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    apply(box.value);
  });
  status.textContent = `${DATA.count} of ${DATA.count} runs`;
  /** For scripts and tests: the log ids a filter selects (throws on a bad filter), and the table's filter. */
  window.mlxReport = {
    select: (text) => select(text).map((i) => Number(ids[i])),
    apply,
    count: DATA.count,
  };
})();
