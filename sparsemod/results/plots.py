"""``pareto.png``: error against model size, coloured by working memory."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from sparsemod.results.pareto import pareto_mask


def pareto_png(trials: pd.DataFrame, name: Any) -> bytes | None:
    """The Pareto plot of ``trials`` as PNG bytes.

    Args:
        trials: :func:`sparsemod.results.trials.trials_frame`'s frame.
        name: the search's name, for the title (none when falsy).

    Returns:
        The PNG, or ``None`` when there is nothing to plot (no completed trial with an error
        and a size > 0).
    """
    needed = {"error", "model_size_bytes", "status"}
    if not needed <= set(trials.columns):
        return None
    done = trials[trials["status"] == "completed"]
    size = pd.to_numeric(done["model_size_bytes"], errors="coerce").to_numpy(float)
    err = pd.to_numeric(done["error"], errors="coerce").to_numpy(float)
    ok = np.isfinite(size) & np.isfinite(err) & (size > 0)  # log axis: sizes must be > 0
    if not ok.any():
        return None
    done, size, err = done[ok], size[ok], err[ok]
    is_pareto = (
        done["is_pareto"].astype(bool).to_numpy()
        if "is_pareto" in done
        else np.zeros(len(done), bool)
    )

    # Figure + Agg canvas, not pyplot: no global backend switch, no figure left open.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    mem = (
        pd.to_numeric(done["working_memory_bytes"], errors="coerce").to_numpy(float)
        if "working_memory_bytes" in done
        else np.full(len(done), np.nan)
    )
    if np.isfinite(mem).any():
        sc = ax.scatter(size, err, c=mem, cmap="viridis", s=28, alpha=0.85, label="trials")
        fig.colorbar(sc, ax=ax, label="working memory (bytes)")
    else:
        ax.scatter(size, err, color="tab:blue", s=28, alpha=0.85, label="trials")
    if is_pareto.any():
        ax.scatter(
            size[is_pareto],
            err[is_pareto],
            s=90,
            facecolors="none",
            edgecolors="tab:red",
            linewidths=1.6,
            label="Pareto set",
        )
    # The step line is the error/size trade-off itself: the 2-D front of what is plotted, which
    # differs from the highlighted set when more than these two objectives were searched.
    front = pareto_mask(np.column_stack([size, err]))
    order = np.argsort(size[front])
    ax.step(size[front][order], err[front][order], where="post", color="tab:red", lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("model size (bytes)")
    ax.set_ylabel("validation error")
    ax.set_title(f"Pareto front: {name}" if name else "Pareto front")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
