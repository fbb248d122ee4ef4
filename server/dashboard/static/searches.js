// sparsemod dashboard: the searches (#/).

import { api, app } from "./api.js";
import { cancelButton, el, fmt, main, poll, statusCell } from "./ui.js";

export async function searchesView(view) {
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

