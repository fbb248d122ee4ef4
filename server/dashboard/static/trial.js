// sparsemod dashboard: one trial (#/trials/ID): params, objectives, history, downloads.

import { api, app, download, Unauthorized } from "./api.js";
import { drawHistory } from "./plots.js";
import { el, fmt, label, main, section, signedOut, stats } from "./ui.js";

export async function trialView(view, id) {
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

export function paramsTable(params) {
  return el(
    "table",
    { id: "params-table" },
    el("tbody", {}, Object.entries(params).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, fmt(v))))),
  );
}

export function objectivesTable(t, objectives) {
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

export function runtimeSection(t) {
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

export function downloads(t) {
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
      if (e instanceof Unauthorized) return signedOut();
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
