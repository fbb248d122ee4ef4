// sparsemod dashboard: one search (#/searches/ID): front, hypervolume, trials, lineage, config.

import { allTrials, api, app, download } from "./api.js";
import { drawHypervolume, drawPareto } from "./plots.js";
import { cancelButton, el, fmt, label, main, poll, section, stats, statusCell } from "./ui.js";

const PAGE = 50; // rows of the trials table

export async function searchView(view, id) {
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
    drawFailed(parts.failed, s.trials);
    drawLineage(parts.lineage, trials);
    drawConfig(parts.config, detail.config);
    await Promise.all([drawTable(parts, s), hv]);
  };
  await refresh(true);
  poll(view, () => refresh(false));
}

export function drawHead(node, d, after) {
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
        ["stopped early", d.trials_stopped],
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

export function drawAxes(parts, s) {
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

function drawFailed(node, trials) {
  const failed = trials.filter((t) => t.status === "failed");
  node.replaceChildren(
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

export function drawLineage(node, trials) {
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

export function drawConfig(node, config) {
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

export async function drawTable(parts, s) {
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

