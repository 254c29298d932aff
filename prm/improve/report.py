"""Reports of `prm improve`: a Markdown table of every round of every filter, and a PNG of the held-out figures."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from prm.fileio import atomic_write


def pct(x) -> str:
    """A share as a percentage with one decimal, '-' for none."""
    return "-" if x is None else f"{100 * x:.1f}"


def markdown(rows: Sequence[dict]) -> str:
    """One line per (filter, round): held-out pass@1, maj@k, pass@k, right answers through a wrong step, and what
    the round trained on (training samples' accuracy, kept solutions and how many of them had a wrong step)."""
    k = rows[0]["k"]
    lines = [
        f"| filter | round | pass@1 | maj@{k} | pass@{k} | right answers with a wrong step | "
        "training samples right | kept | kept with a wrong step |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lucky = (
            "-"
            if r.get("wrong_step_share") is None
            else f"{pct(r['wrong_step_share'])}% ({r['right_with_wrong_step']})"
        )
        kept = (
            f"| {pct(r['train_accuracy'])}% | {r['kept']} | {r['kept_wrong_step']} |"
            if "kept" in r
            else "| - | - | - |"
        )
        lines.append(
            f"| {r['filter']} | {r['round']} | {pct(r['pass@1'])} | {pct(r[f'maj@{k}'])} | {pct(r[f'pass@{k}'])} "
            f"| {lucky} {kept}"
        )
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[dict], path: str | os.PathLike) -> None:
    """Held-out pass@1, maj@k, pass@k and the share of right answers with a wrong step against the round, one line
    per filter (each starts at round 0, the starting policy); written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = rows[0]["k"]
    start = [r for r in rows if r["round"] == 0]
    filters = list(dict.fromkeys(r["filter"] for r in rows if r["round"] > 0))
    panels = [("pass@1", "pass@1 (%)"), (f"maj@{k}", f"maj@{k} (%)"), (f"pass@{k}", f"pass@{k} (%)"),
              ("wrong_step_share", "right answers with a wrong step (%)")]  # fmt: skip
    fig = Figure(figsize=(10, 6.5), dpi=110)
    FigureCanvasAgg(fig)
    for i, (key, label) in enumerate(panels):
        ax = fig.add_subplot(2, 2, i + 1)
        for name in filters:
            line = start + [r for r in rows if r["filter"] == name]
            xs = [r["round"] for r in line if r.get(key) is not None]
            ys = [100 * r[key] for r in line if r.get(key) is not None]
            ax.plot(xs, ys, marker="o", markersize=4, label=name)
        ax.set(xlabel="round", ylabel=label)
        ax.set_xticks(sorted({r["round"] for r in rows}))
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8)
    fig.suptitle("prm improve: held-out figures after every round, per filter")
    fig.tight_layout()
    with atomic_write(path, binary=True) as f:
        fig.savefig(f, format="png")


def write_reports(out: Path, stem: str, result: dict, table: str, draw: Callable[[Path], None], headline: str) -> None:
    """`stem`.json, `stem`.md and `stem`.png into `out`, each written atomically; then the headline and the table
    on stdout."""
    with atomic_write(out / f"{stem}.json") as f:
        json.dump(result, f, indent=2)
    with atomic_write(out / f"{stem}.md") as f:
        f.write(table)
    draw(out / f"{stem}.png")
    print(headline)
    print(table, end="")
