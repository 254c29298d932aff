"""The learning curve of a `prm sft` run: held-out loss and sampled accuracy against training tokens (a PNG)."""

from __future__ import annotations

import os
from pathlib import Path

from prm.fileio import atomic_write
from prm.fit import read_evals


def plot_curve(run_dir: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Write the curve of a run with evaluations to `path` (atomically); False when it had none."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    evals = read_evals(run_dir, ["val_loss", "eval_accuracy"])
    if not evals:
        return False
    fig = Figure(figsize=(8, 3.6), dpi=110)
    FigureCanvasAgg(fig)
    panels = [("eval_accuracy", "held-out accuracy (%, sampled at T = 0.8)", 100), ("val_loss", "held-out loss", 1)]
    panels = [p for p in panels if any(p[0] in r for r in evals)]
    for i, (key, label, scale) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        pts = [(r["tokens"], scale * r[key]) for r in evals if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=4)
        ax.set(xlabel="training tokens", ylabel=label)
        ax.grid(alpha=0.3)
    fig.suptitle(f"prm sft: {Path(run_dir).name}")
    fig.tight_layout()
    with atomic_write(path, binary=True) as f:
        fig.savefig(f, format="png")
    return True
