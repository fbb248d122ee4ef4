// sparsemod dashboard: one page, three views chosen by the URL's fragment
//   #/               the searches
//   #/searches/ID    one search: front, hypervolume, trials, lineage, config
//   #/trials/ID      one trial: params, objectives, history, downloads
// Every figure comes from the JSON API (/api/v1) with the token kept for this tab. Data is
// written into the page as text, never as HTML.
"use strict";

const API = "/api/v1";
const POLL_MS = 2000; // the issue asks for 2 s or less
const PAGE = 50; // rows of the trials table
const BULK = 500; // the API's largest page
const TOKEN_KEY = "sparsemod-token";

const app = {
  token: sessionStorage.getItem(TOKEN_KEY),
  vocab: null, // GET /vocabulary
  readOnly: true,
  timer: null,
  view: 0, // bumped on every navigation: a late answer of an old view is dropped
};

class Unauthorized extends Error {}

// ------------------------------------------------------------------ requests

async function request(path, options = {}) {
  const headers = {};
  if (app.token) headers.Authorization = `Bearer ${app.token}`;
  const r = await fetch(API + path, { ...options, headers });
  if (r.status === 401) throw new Unauthorized();
  if (!r.ok) {
    let detail = r.statusText;
    try {
      detail = (await r.json()).detail;
    } catch (_) { /* not JSON */ }
    throw new Error(`${r.status}: ${detail}`);
  }
  return r;
}

async function api(path, options) {
  return (await request(path, options)).json();
}

async function allTrials(searchId) {
  const first = await api(`/searches/${searchId}/trials?limit=${BULK}`);
  const pages = [];
  for (let offset = BULK; offset < first.count; offset += BULK) {
    pages.push(api(`/searches/${searchId}/trials?limit=${BULK}&offset=${offset}`));
  }
  return first.data.concat(...(await Promise.all(pages)).map((p) => p.data));
}

async function download(path, fallback) {
  const r = await request(path);
  const disposition = r.headers.get("content-disposition") || "";
  const match = disposition.match(/filename="([^"]+)"/);
  const url = URL.createObjectURL(await r.blob());
  const a = el("a", { href: url, download: match ? match[1] : fallback });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ------------------------------------------------------------------ page helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function main() {
  return document.getElementById("main");
}

function section(title, ...children) {
  return el("section", { class: "card" }, el("h2", {}, title), ...children);
}

function unit(name) {
  const m = app.vocab && app.vocab.metrics.find((x) => x.name === name);
  return m ? m.unit : "";
}

function label(name) {
  const u = unit(name);
  return u && u !== "1" ? `${name} (${u})` : name;
}

function fmt(value, name) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  const u = name ? unit(name) : "";
  if (u === "B" || u === "FLOPs") return Math.round(value).toLocaleString("en");
  if (u === "s") return value < 1 ? `${(value * 1000).toPrecision(3)} ms` : `${value.toPrecision(3)} s`;
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) < 1e-3 ? value.toExponential(2) : value.toPrecision(4);
}

function statusCell(status) {
  return el("td", { class: `status-${status}` }, status);
}

function stats(pairs) {
  return el(
    "dl",
    { class: "stats" },
    pairs.map(([k, v, id]) => el("div", {}, el("dt", {}, k), el("dd", { id }, v))),
  );
}

function escapeHover(text) {
  // Plotly renders a small HTML subset in hover text; a value must not add tags.
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function hoverOf(t) {
  const lines = [`trial ${t.index} (${t.phase})`];
  for (const [k, v] of Object.entries(t.params)) lines.push(`${k} = ${v}`);
  return lines.map(escapeHover).join("<br>");
}

function setLive(text) {
  document.getElementById("live").textContent = text;
}

function poll(view, fn) {
  stopPolling();
  app.timer = setInterval(async () => {
    if (view !== app.view) return stopPolling();
    try {
      await fn();
      setLive(`updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (e instanceof Unauthorized) return showLogin();
      setLive(`update failed: ${e.message}`);
    }
  }, POLL_MS);
}

function stopPolling() {
  if (app.timer !== null) clearInterval(app.timer);
  app.timer = null;
}

// ------------------------------------------------------------------ sign in

function showLogin(message) {
  stopPolling();
  app.view += 1;
  setLive("");
  const form = document.getElementById("login").content.cloneNode(true);
  main().replaceChildren(form);
  document.getElementById("logout").hidden = true;
  if (message) document.getElementById("login-error").textContent = message;
  document.getElementById("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    app.token = document.getElementById("token").value.trim();
    try {
      await api("/searches?limit=1");
    } catch (e) {
      app.token = null;
      document.getElementById("login-error").textContent =
        e instanceof Unauthorized ? "The server refused this token." : e.message;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, app.token);
    route();
  });
}

function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
  app.token = null;
  showLogin();
}

// ------------------------------------------------------------------ the searches

async function searchesView(view) {
  const table = el("table", { id: "searches-table" });
  main().replaceChildren(el("h1", {}, "Searches"), el("div", { class: "card scroll" }, table));
  const draw = async () => {
    const page = await api("/searches?limit=100");
    const details = await Promise.all(page.data.map((s) => api(`/searches/${s.id}`)));
    if (view !== app.view) return;
    const head = el(
      "tr",
      {},
      ["id", "name", "problem", "status", "phase", "progress", "hypervolume", "best error", "Pareto",
        "created", ""].map((h) => el("th", {}, h)),
    );
    const rows = details.map((s) =>
      el(
        "tr",
        { "data-id": s.id },
        el("td", { class: "num" }, s.id),
        el("td", {}, el("a", { href: `#/searches/${s.id}` }, s.name)),
        el("td", {}, s.problem),
        statusCell(s.status),
        el("td", {}, s.phase || "–"),
        el("td", { class: "num" }, `${s.trials_done} / ${s.trials_total}`),
        el("td", { class: "num" }, fmt(s.hypervolume)),
        el("td", { class: "num" }, s.best ? fmt(s.best.metrics.error, "error") : "–"),
        el("td", { class: "num" }, s.pareto_size),
        el("td", {}, new Date(s.created_at).toLocaleString()),
        el("td", {}, cancelButton(s, draw)),
      ),
    );
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
    if (!rows.length) table.after(el("p", { class: "muted" }, "No searches in this store yet."));
  };
  await draw();
  poll(view, draw);
}

function cancelButton(search, after) {
  if (app.readOnly || app.vocab.finished_statuses.includes(search.status)) return null;
  if (search.status === "cancelling") return null;
  return el(
    "button",
    {
      type: "button",
      class: "cancel",
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          await api(`/searches/${search.id}/cancel`, { method: "POST" });
        } catch (e) {
          alert(e.message);
        }
        await after();
      },
    },
    "Cancel",
  );
}

// ------------------------------------------------------------------ one search

async function searchView(view, id) {
  const s = {
    id,
    detail: null,
    trials: [],
    version: null,
    axes: null,
    table: { sort: "index", order: "asc", status: "", phase: "", offset: 0 },
  };
  const parts = {
    head: el("div", { id: "search-head" }),
    pareto: el("div", { id: "pareto-plot", class: "plot" }),
    axes: el("div", { class: "controls", id: "pareto-axes" }),
    failed: el("div", { id: "failed-trials" }),
    hv: el("div", { id: "hv-plot", class: "plot small" }),
    tableControls: el("div", { class: "controls" }),
    table: el("table", { id: "trials-table" }),
    pager: el("div", { class: "controls", id: "trials-pager" }),
    lineage: el("div", { id: "lineage" }),
    config: el("table", { id: "config-table" }),
  };
  main().replaceChildren(
    parts.head,
    el(
      "div",
      { class: "grid" },
      section("Pareto front", parts.axes, parts.pareto, parts.failed),
      el("div", {}, section("Hypervolume", parts.hv), section("Lineage of morphs", parts.lineage)),
    ),
    section("Trials", parts.tableControls, el("div", { class: "scroll" }, parts.table), parts.pager),
    section("Config", el("div", { class: "scroll" }, parts.config)),
  );

  const refresh = async (force) => {
    const detail = await api(`/searches/${id}`);
    const version = JSON.stringify([detail.status, detail.trials_done, detail.trials_running,
      detail.updated_at, detail.hypervolume, detail.ref_point]);
    if (!force && version === s.version) return;
    // The hypervolume is drawn when it comes: the front and the table do not wait for it.
    const hv = api(`/searches/${id}/hypervolume`).then((h) => {
      if (view === app.view) drawHypervolume(parts.hv, h);
    });
    const trials = await allTrials(id);
    if (view !== app.view) return;
    Object.assign(s, { detail, trials, version });
    drawHead(parts.head, detail, () => refresh(true));
    drawAxes(parts, s);
    drawPareto(parts, s);
    drawLineage(parts.lineage, trials);
    drawConfig(parts.config, detail.config);
    await Promise.all([drawTable(parts, s), hv]);
  };
  await refresh(true);
  poll(view, () => refresh(false));
}

function drawHead(node, d, after) {
  const csv = (what) =>
    el("button", { type: "button", onclick: () => download(`/searches/${d.id}/${what}.csv`, `${what}.csv`) },
      `${what}.csv`);
  node.replaceChildren(
    el("h1", {}, `${d.name} `, el("span", { class: "muted" }, `#${d.id} · ${d.problem}`)),
    el(
      "div",
      { class: "card" },
      stats([
        ["status", d.status, "search-status"],
        ["phase", d.phase || "–", "search-phase"],
        ["trials", `${d.trials_done} / ${d.trials_total}`, "search-progress"],
        ["running", d.trials_running],
        ["failed", d.trials_failed],
        ["hypervolume", fmt(d.hypervolume), "search-hv"],
        ["Pareto members", d.pareto_size, "pareto-size"],
        ["best error", d.best ? fmt(d.best.metrics.error, "error") : "–", "best-error"],
        ["objectives", d.objectives.join(", ")],
      ]),
      d.error ? el("p", { class: "error" }, d.error) : null,
      el("div", { class: "controls" }, csv("trials"), csv("pareto"), cancelButton(d, after)),
    ),
  );
}

function drawAxes(parts, s) {
  const objectives = s.detail.objectives;
  if (!s.axes) {
    s.axes = {
      x: objectives[1] || objectives[0],
      y: objectives[0],
      color: objectives[2] || "",
    };
  }
  const select = (key, allowNone) =>
    el(
      "select",
      {
        id: `axis-${key}`,
        onchange: (e) => {
          s.axes[key] = e.target.value;
          drawPareto(parts, s);
        },
      },
      allowNone ? el("option", { value: "" }, "none") : null,
      objectives.map((o) => el("option", { value: o, selected: o === s.axes[key] }, o)),
    );
  parts.axes.replaceChildren(
    el("label", {}, "x ", select("x")),
    el("label", {}, "y ", select("y")),
    el("label", {}, "colour ", select("color", true)),
  );
}

function drawPareto(parts, s) {
  const { x, y, color } = s.axes;
  const done = s.trials.filter((t) => t.status === "completed" && t.duplicate_of === null);
  const groups = [
    ["other completed", done.filter((t) => !t.is_pareto), 7, 0.45],
    ["Pareto", done.filter((t) => t.is_pareto), 11, 1],
  ];
  const values = done.map((t) => t.metrics[color]).filter((v) => v !== null && v !== undefined);
  const [cmin, cmax] = values.length ? [Math.min(...values), Math.max(...values)] : [0, 1];
  const traces = groups.map(([name, ts, size, opacity], i) => ({
    name,
    type: "scatter",
    mode: "markers",
    x: ts.map((t) => t.metrics[x]),
    y: ts.map((t) => t.metrics[y]),
    customdata: ts.map((t) => t.id),
    text: ts.map(hoverOf),
    hovertemplate: `%{text}<br>${escapeHover(x)} = %{x}<br>${escapeHover(y)} = %{y}<extra>${name}</extra>`,
    marker: {
      size,
      opacity,
      symbol: i ? "diamond" : "circle",
      line: { width: i ? 1.5 : 0, color: "#111" },
      ...(color
        ? {
            color: ts.map((t) => t.metrics[color]),
            colorscale: "Viridis",
            cmin,
            cmax,
            showscale: i === 1,
            colorbar: { title: { text: label(color), side: "right" } },
          }
        : { color: i ? "#2456c8" : "#9aa4b5" }),
    },
  }));
  const layout = {
    margin: { l: 60, r: 20, t: 30, b: 50 },
    xaxis: { title: { text: label(x) }, type: unit(x) === "B" ? "log" : "linear" },
    yaxis: { title: { text: label(y) } },
    legend: { orientation: "h", y: -0.2 },
    uirevision: `${x}|${y}`,
  };
  const plot = parts.pareto;
  plot.dataset.points = String(traces[1].x.length);
  window.Plotly.react(plot, traces, layout, { displaylogo: false, responsive: true });
  if (!plot.dataset.clickable) {
    plot.dataset.clickable = "1";
    plot.on("plotly_click", (event) => {
      const id = event.points[0] && event.points[0].customdata;
      if (id) location.hash = `#/trials/${id}`;
    });
  }
  const failed = s.trials.filter((t) => t.status === "failed");
  parts.failed.replaceChildren(
    el("h2", {}, `Failed trials (${failed.length})`),
    failed.length
      ? el(
          "ul",
          { id: "failed-list", class: "box" },
          failed.map((t) =>
            el("li", {}, el("a", { href: `#/trials/${t.id}` }, `trial ${t.index}`), ` (${t.phase}): `,
              t.failure_reason || "no reason recorded"),
          ),
        )
      : el("p", { class: "muted" }, "none"),
  );
}

function drawHypervolume(node, hv) {
  const xs = hv.data.map((_, i) => i + 1);
  const phases = [...new Set(hv.data.map((p) => p.phase))];
  const traces = [
    {
      name: "hypervolume",
      type: "scatter",
      mode: "lines",
      x: xs,
      y: hv.data.map((p) => p.hypervolume),
      line: { color: "#9aa4b5", shape: "hv" },
      hoverinfo: "skip",
    },
    ...phases.map((phase) => {
      const points = hv.data.map((p, i) => [p, i]).filter(([p]) => p.phase === phase);
      return {
        name: phase,
        type: "scatter",
        mode: "markers",
        x: points.map(([, i]) => i + 1),
        y: points.map(([p]) => p.hypervolume),
        text: points.map(([p]) => `trial ${p.index}`),
        hovertemplate: `%{text} (${escapeHover(phase)})<br>hypervolume %{y:.4f}<extra></extra>`,
      };
    }),
  ];
  const layout = {
    margin: { l: 50, r: 10, t: 30, b: 40 },
    xaxis: { title: { text: "completed trials" } },
    yaxis: { title: { text: "hypervolume" }, rangemode: "tozero" },
    legend: { orientation: "h", y: -0.3 },
  };
  window.Plotly.react(node, traces, layout, { displaylogo: false, responsive: true });
}

function drawLineage(node, trials) {
  const byIndex = new Map(trials.map((t) => [t.index, t]));
  const children = new Map();
  for (const t of trials) {
    if (t.parent_index === null || !byIndex.has(t.parent_index)) continue;
    if (!children.has(t.parent_index)) children.set(t.parent_index, []);
    children.get(t.parent_index).push(t);
  }
  const roots = trials.filter((t) => children.has(t.index) && (t.parent_index === null || !byIndex.has(t.parent_index)));
  const item = (t) =>
    el(
      "li",
      { "data-index": t.index },
      el("a", { href: `#/trials/${t.id}` }, `trial ${t.index}`),
      ` ${t.phase}`,
      t.morph ? ` · ${t.morph}` : "",
      ` · error ${fmt(t.metrics.error, "error")}`,
      t.is_pareto ? " ★" : "",
      children.has(t.index) ? el("ul", {}, children.get(t.index).map(item)) : null,
    );
  node.replaceChildren(
    roots.length
      ? el("ul", { class: "tree box" }, roots.map(item))
      : el("p", { class: "muted" }, "No morphs yet: the morphism phase comes last."),
  );
}

function drawConfig(node, config) {
  node.replaceChildren(
    el(
      "tbody",
      {},
      Object.keys(config)
        .sort()
        .map((k) => el("tr", {}, el("th", {}, k), el("td", {}, JSON.stringify(config[k])))),
    ),
  );
}

async function drawTable(parts, s) {
  const t = s.table;
  const phases = [...new Set(s.trials.map((x) => x.phase))].sort();
  const filter = (key, values) =>
    el(
      "select",
      {
        id: `filter-${key}`,
        onchange: async (e) => {
          t[key] = e.target.value;
          t.offset = 0;
          await drawTable(parts, s);
        },
      },
      el("option", { value: "" }, `every ${key}`),
      values.map((v) => el("option", { value: v, selected: v === t[key] }, v)),
    );
  parts.tableControls.replaceChildren(
    filter("status", app.vocab.trial_statuses),
    filter("phase", phases),
  );
  const query = new URLSearchParams({ sort: t.sort, order: t.order, limit: PAGE, offset: t.offset });
  if (t.status) query.set("status", t.status);
  if (t.phase) query.set("phase", t.phase);
  const page = await api(`/searches/${s.id}/trials?${query}`);
  const metrics = s.detail.objectives;
  const header = (name, text, numeric) => {
    const sorted = t.sort === name ? (t.order === "asc" ? "ascending" : "descending") : null;
    return el(
      "th",
      {
        "data-sort": name,
        "aria-sort": sorted,
        class: numeric ? "num" : null,
        onclick: async () => {
          t.order = t.sort === name && t.order === "asc" ? "desc" : "asc";
          t.sort = name;
          t.offset = 0;
          await drawTable(parts, s);
        },
      },
      text,
    );
  };
  const head = el(
    "tr",
    {},
    header("index", "trial", true),
    el("th", {}, "phase"),
    el("th", {}, "status"),
    metrics.map((m) => header(m, label(m), true)),
    header("accuracy_val", "val accuracy", true),
    el("th", {}, "Pareto"),
    el("th", {}, "from"),
  );
  const rows = page.data.map((x) =>
    el(
      "tr",
      { class: x.is_pareto ? "pareto" : null, "data-id": x.id },
      el("td", { class: "num" }, el("a", { href: `#/trials/${x.id}` }, x.index)),
      el("td", {}, x.phase),
      statusCell(x.status),
      metrics.map((m) => el("td", { class: "num" }, fmt(x.metrics[m], m))),
      el("td", { class: "num" }, fmt(x.metrics.accuracy_val, "accuracy_val")),
      el("td", {}, x.is_pareto ? "★" : ""),
      el(
        "td",
        {},
        x.duplicate_of !== null ? `same network as trial ${x.duplicate_of}` : "",
        x.parent_index !== null ? `trial ${x.parent_index}: ${x.morph || ""}` : "",
      ),
    ),
  );
  parts.table.replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
  const last = Math.min(t.offset + PAGE, page.count);
  const move = (delta) => async () => {
    t.offset = Math.max(0, t.offset + delta);
    await drawTable(parts, s);
  };
  parts.pager.replaceChildren(
    el("button", { type: "button", id: "prev-page", disabled: t.offset === 0, onclick: move(-PAGE) }, "‹ previous"),
    el("span", { id: "trials-count", "data-count": page.count },
      page.count ? `trials ${t.offset + 1}–${last} of ${page.count}` : "no trials"),
    el("button", { type: "button", id: "next-page", disabled: last >= page.count, onclick: move(PAGE) }, "next ›"),
  );
}

// ------------------------------------------------------------------ one trial

async function trialView(view, id) {
  const [t, history] = await Promise.all([api(`/trials/${id}`), api(`/trials/${id}/history`)]);
  const search = await api(`/searches/${t.search_id}`);
  if (view !== app.view) return;
  const lossPlot = el("div", { id: "loss-plot", class: "plot small" });
  const sparsityPlot = el("div", { id: "sparsity-plot", class: "plot small" });
  main().replaceChildren(
    el(
      "h1",
      {},
      `Trial ${t.index} `,
      el("span", { class: "muted" }, "of "),
      el("a", { href: `#/searches/${search.id}` }, search.name),
    ),
    el(
      "div",
      { class: "card" },
      stats([
        ["status", t.status, "trial-status"],
        ["phase", t.phase],
        ["seed", t.seed],
        ["Pareto member", t.is_pareto ? "yes" : "no"],
        ["from", t.parent_index !== null ? `trial ${t.parent_index}: ${t.morph}` : "–"],
        ["duplicate of", t.duplicate_of !== null ? `trial ${t.duplicate_of}` : "–"],
      ]),
      t.failure_reason ? el("p", { class: "error" }, t.failure_reason) : null,
    ),
    el(
      "div",
      { class: "grid" },
      el("div", {}, section("Objectives", objectivesTable(t, search.objectives)), runtimeSection(t)),
      el("div", {}, section("Params", paramsTable(t.params)), downloads(t)),
    ),
    el(
      "div",
      { class: "grid" },
      section("Loss and validation accuracy per epoch", lossPlot),
      section("Sparsity per stage", sparsityPlot),
    ),
  );
  drawHistory(lossPlot, sparsityPlot, history.data);
}

function paramsTable(params) {
  return el(
    "table",
    { id: "params-table" },
    el("tbody", {}, Object.entries(params).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, fmt(v))))),
  );
}

function objectivesTable(t, objectives) {
  const names = app.vocab.metrics
    .map((m) => m.name)
    .filter((n) => !n.startsWith("runtime_") && (n in t.metrics || n in t.predicted));
  return el(
    "table",
    { id: "objectives-table" },
    el("thead", {}, el("tr", {}, el("th", {}, "metric"), el("th", { class: "num" }, "predicted"),
      el("th", { class: "num" }, "measured"))),
    el(
      "tbody",
      {},
      names.map((n) =>
        el(
          "tr",
          { class: objectives.includes(n) ? "pareto" : null },
          el("td", { title: app.vocab.metrics.find((m) => m.name === n).description }, label(n)),
          el("td", { class: "num" }, fmt(t.predicted[n], n)),
          el("td", { class: "num" }, fmt(t.metrics[n], n)),
        ),
      ),
    ),
  );
}

function runtimeSection(t) {
  const names = app.vocab.metrics.map((m) => m.name).filter((n) => n.startsWith("runtime_") && n in t.metrics);
  if (!names.length) return null;
  return section(
    "As the runtime reports it (deploy check)",
    el(
      "table",
      { id: "runtime-table" },
      el("tbody", {}, names.map((n) => el("tr", {}, el("th", {}, label(n)), el("td", { class: "num" }, fmt(t.metrics[n], n))))),
    ),
  );
}

function downloads(t) {
  if (!t.model) {
    const why = t.is_pareto
      ? "No model is stored for this trial."
      : "Only the Pareto members' models are kept.";
    return section("Model", el("p", { class: "muted" }, why));
  }
  const path = `/trials/${t.id}/model`;
  const error = el("p", { class: "error", id: "download-error" });
  const get = (query, name) => async () => {
    error.textContent = "";
    try {
      await download(path + query, name);
    } catch (e) {
      if (e instanceof Unauthorized) return showLogin();
      error.textContent = e.message;
    }
  };
  return section(
    "Model",
    el("p", {}, `${t.model.format}, ${t.model.size.toLocaleString("en")} B, sha256 ${t.model.sha256.slice(0, 16)}…`),
    el(
      "div",
      { class: "downloads" },
      el("button", { type: "button", onclick: get("", `trial_${t.id}`) }, "stored model"),
      app.vocab.deploy_formats.map((f) =>
        el("button", { type: "button", "data-format": f, onclick: get(`?format=${f}`, `trial_${t.id}.${f}`) }, f),
      ),
    ),
    error,
  );
}

function drawHistory(lossNode, sparsityNode, rows) {
  const train = rows.filter((r) => r.stage === "train");
  const steps = rows.map((_, i) => i + 1);
  window.Plotly.react(
    lossNode,
    [
      { name: "loss", type: "scatter", mode: "lines+markers", x: train.map((r) => r.epoch), y: train.map((r) => r.loss) },
      {
        name: "validation accuracy",
        type: "scatter",
        mode: "lines+markers",
        yaxis: "y2",
        x: train.map((r) => r.epoch),
        y: train.map((r) => r.val_accuracy),
      },
    ],
    {
      margin: { l: 50, r: 50, t: 30, b: 40 },
      xaxis: { title: { text: "epoch" } },
      yaxis: { title: { text: "loss" } },
      yaxis2: {
        title: { text: "val accuracy" },
        overlaying: "y",
        side: "right",
        range: [0, 1],
        autorange: false,
        showgrid: false,
      },
      legend: { orientation: "h", y: -0.3 },
    },
    { displaylogo: false, responsive: true },
  );
  window.Plotly.react(
    sparsityNode,
    [
      {
        name: "sparsity",
        type: "bar",
        x: steps,
        y: rows.map((r) => r.sparsity),
        text: rows.map((r) => escapeHover(`${r.stage} ${r.epoch}`)),
        textposition: "none",
        hovertemplate: "%{text}<br>sparsity %{y:.3f}<extra></extra>",
      },
      {
        name: "val accuracy",
        type: "scatter",
        mode: "markers",
        x: steps,
        y: rows.map((r) => r.val_accuracy),
        text: rows.map((r) => escapeHover(r.stage)),
        hovertemplate: "%{text}<br>val accuracy %{y:.3f}<extra></extra>",
      },
    ],
    {
      margin: { l: 50, r: 10, t: 30, b: 40 },
      xaxis: { title: { text: "step (train epochs, prune stages, quantize)" } },
      yaxis: { range: [0, 1] },
      legend: { orientation: "h", y: -0.3 },
    },
    { displaylogo: false, responsive: true },
  );
}

// ------------------------------------------------------------------ routing

async function route() {
  stopPolling();
  const view = ++app.view;
  document.getElementById("logout").hidden = !app.token;
  try {
    if (!app.vocab) {
      const [vocab, health] = await Promise.all([api("/vocabulary"), api("/health")]);
      app.vocab = vocab;
      app.readOnly = health.read_only;
    }
    const hash = location.hash || "#/";
    let m;
    if ((m = hash.match(/^#\/searches\/(\d+)$/))) await searchView(view, Number(m[1]));
    else if ((m = hash.match(/^#\/trials\/(\d+)$/))) await trialView(view, Number(m[1]));
    else await searchesView(view);
    setLive(`updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    if (e instanceof Unauthorized) {
      app.vocab = null;
      if (app.token) sessionStorage.removeItem(TOKEN_KEY);
      app.token = null;
      showLogin();
      return;
    }
    main().replaceChildren(el("p", { class: "error", id: "page-error" }, e.message));
  }
}

window.addEventListener("hashchange", route);
document.getElementById("logout").addEventListener("click", forget);
route();
