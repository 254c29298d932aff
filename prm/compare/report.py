"""The report of `prm compare`: Markdown tables (all problems, easy, hard) and accuracy against tokens as a PNG."""

from __future__ import annotations

import os
from collections.abc import Sequence

from prm.fileio import atomic_write

NAMES = {
    "bon": "best-of-N (PRM vote)",
    "bon_rank": "best-of-N (PRM rank)",
    "majority": "majority vote",
    "beam": "beam",
    "dvts": "DVTS",
    "astar": "A*",
    "mcts": "MCTS",
}
BEST_OF_N = ("bon", "bon_rank", "majority")  # the selectors over the pool, before the searches


def label(name: str, summary: dict) -> str:
    """A column's name; the ranked best-of-N names the aggregate it ranks by (older summaries lack it)."""
    if name == "bon_rank" and summary.get("bon_rank_by"):
        return f"best-of-N (PRM {summary['bon_rank_by']})"
    return NAMES.get(name, name)


def _cell(s: dict, part: str) -> str:
    x = s[part]
    if x["accuracy"] is None:
        return "–"
    return f"{100 * x['accuracy']:.1f} ± {100 * x['std']:.1f} ({s['tokens']:.0f})"


def markdown(summary: dict) -> str:
    """One table per part (all, easy, hard): a row per budget, a column per strategy, each cell accuracy in % ±
    the bootstrap std over problems, with the tokens generated per problem in brackets."""
    names = list(summary["units"])
    budgets = summary["budgets"]
    out = []
    for part in ("all", "easy", "hard"):
        some = summary["units"][names[0]][str(budgets[0])][part]
        if not some["n"]:
            continue
        title = {"all": "all problems", "easy": "easy problems", "hard": "hard problems"}[part]
        out.append(f"**{title}** ({some['n']}; accuracy % ± bootstrap std over problems, (tokens per problem))\n")
        out.append("| budget (samples' tokens) | " + " | ".join(label(n, summary) for n in names) + " |")
        out.append("|---:|" + "---:|" * len(names))
        for b in budgets:
            cells = [_cell(summary["units"][n][str(b)], part) for n in names]
            out.append(f"| {b} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def plot(summary: dict, path: str | os.PathLike, title: str) -> None:
    """Accuracy against generated tokens per problem (log2 axis), one line per strategy with the bootstrap std over
    problems as error bars; a panel per part (all, easy, hard)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    parts = [p for p in ("all", "easy", "hard") if _n(summary, p)]
    fig = Figure(figsize=(5 * len(parts), 4.2), dpi=100)
    FigureCanvasAgg(fig)
    budgets = summary["budgets"]
    for k, part in enumerate(parts):
        ax = fig.add_subplot(1, len(parts), k + 1)
        for name, units in summary["units"].items():
            xs = [units[str(b)]["tokens"] for b in budgets]
            ys = [100 * (units[str(b)][part]["accuracy"] or 0.0) for b in budgets]
            es = [100 * units[str(b)][part]["std"] for b in budgets]
            style = {
                "majority": {"linestyle": "--", "color": "gray"},
                "bon_rank": {"linestyle": ":", "marker": "s"},
            }.get(name, {"marker": "o"})
            ax.errorbar(xs, ys, yerr=es, label=label(name, summary), capsize=3, **style)
        ax.set_xscale("log", base=2)
        ax.set(xlabel="generated tokens per problem", ylabel="accuracy (%)")
        ax.set_title(f"{part} problems ({_n(summary, part)})")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(path, binary=True) as f:
        fig.savefig(f, format="png")


def _n(summary: dict, part: str) -> int:
    first = next(iter(summary["units"].values()))
    return first[str(summary["budgets"][0])][part]["n"]


def match_line(summary: dict, reference: int = 16) -> list[str]:
    """For each search strategy and each best-of-N selector, the fewest tokens at which the search reaches
    best-of-`reference`'s accuracy."""
    units = summary["units"]
    lines = []
    for ref in ("bon", "bon_rank"):
        if ref not in units or str(reference) not in units[ref]:
            continue
        target = units[ref][str(reference)]["all"]["accuracy"]
        ref_tokens = units[ref][str(reference)]["tokens"]
        what = f"best-of-{reference}'s {100 * target:.1f}% ({label(ref, summary)})"
        for name, rows in units.items():
            if name in BEST_OF_N:
                continue
            hits = [r["tokens"] for r in rows.values() if (r["all"]["accuracy"] or 0.0) >= target]
            if hits:
                t = min(hits)
                lines.append(
                    f"{label(name, summary)} reaches {what} at {t:.0f} tokens per problem ({t / ref_tokens:.2f}x "
                    f"best-of-{reference}'s {ref_tokens:.0f})"
                )
            else:
                lines.append(f"{label(name, summary)} does not reach {what} within the budgets")
    return lines


def rows_order(names: Sequence[str]) -> list[str]:
    """Strategies in a fixed order: the best-of-N selectors (vote, rank, majority), then the searches as configured."""
    head = [n for n in BEST_OF_N if n in names]
    return head + [n for n in names if n not in head]
