// sparsemod dashboard: the plots, drawn with plotly.js (window.Plotly, from plotly's own
// Python package).

import { escapeHover, hoverOf, label, unit } from "./ui.js";

export function drawPareto(parts, s) {
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
}

export function drawHypervolume(node, hv) {
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

export function drawHistory(lossNode, sparsityNode, rows) {
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
        tickmode: "linear",
        tick0: 0,
        dtick: 0.25,
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
      xaxis: {
        title: { text: "step" },
        tickmode: "array",
        tickvals: steps,
        ticktext: rows.map((r) => (r.stage === "train" ? `epoch ${r.epoch}` : r.stage)),
      },
      yaxis: { range: [0, 1] },
      legend: { orientation: "h", y: -0.3 },
    },
    { displaylogo: false, responsive: true },
  );
}
