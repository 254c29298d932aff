"""Reports of a best-of-N run: a Markdown table, a PNG of accuracy against N, and a self-contained HTML page.

The HTML page needs no network and no script: the plot is embedded as a data URI, the style is inline, and every
text from the data is escaped. Each step is coloured by its PRM score (red = likely wrong, green = likely right) and
carries the score as a tooltip; the selected candidate of each problem is marked, and so is every correct one.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path

from prm.fileio import atomic_write

# Selectors drawn with a dashed line: references rather than PRM selection.
REFERENCE = ("calc", "majority", "random", "judge-vote", "oracle")
# Selectors drawn with their ±1 std band over trials.
BANDS = ("prm-min", "majority")


def markdown_table(ns: Sequence[int], curve: dict, columns: Sequence[str] | None = None) -> str:
    """Accuracy (mean ± std over trials, in percent) with one row per N and one column per selector."""
    cols = list(columns or curve)
    lines = ["| N | " + " | ".join(cols) + " |", "|---:|" + "---:|" * len(cols)]
    for i, n in enumerate(ns):
        cells = [f"{100 * curve[c]['mean'][i]:.1f} ± {100 * curve[c]['std'][i]:.1f}" for c in cols]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curve(ns: Sequence[int], curve: dict, path: str | os.PathLike, title: str) -> None:
    """Accuracy against N on a log2 axis, one line per selector (±1 std band over trials for the PRM's min and
    majority vote); written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    # The default cycle has 10 colours and a pool report draws up to 14 lines: two selectors sharing a colour read
    # as one. tab20's saturated half first, then its light half, keeps 20 lines apart.
    from matplotlib import colormaps

    tab20 = colormaps["tab20"].colors
    colours = tab20[0::2] + tab20[1::2]
    for i, (name, c) in enumerate(curve.items()):
        mean = [100 * m for m in c["mean"]]
        style = "--" if name in REFERENCE else "-"
        (line,) = ax.plot(ns, mean, style, color=colours[i % 20], marker="o", markersize=4, label=name)
        if name in BANDS:  # a band for every line would hide the lines; the headline ones get their spread
            lo = [100 * (m - s) for m, s in zip(c["mean"], c["std"], strict=True)]
            hi = [100 * (m + s) for m, s in zip(c["mean"], c["std"], strict=True)]
            ax.fill_between(ns, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(ns), [str(n) for n in ns])
    ax.set(xlabel="N (candidates per problem)", ylabel="accuracy (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    with atomic_write(path, binary=True) as f:
        fig.savefig(f, format="png")


def _colour(score: float) -> str:
    """Background for a step score in [0, 1]: hue 0 (red) to 120 (green), light enough to read text on."""
    s = min(max(score, 0.0), 1.0)
    return f"hsl({round(120 * s)}, 70%, 85%)"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table.acc { border-collapse: collapse; font-size: 0.9em; } table.acc td, table.acc th { border: 1px solid #ccc;
  padding: 0.2em 0.6em; text-align: right; }
section.problem { border-top: 2px solid #888; margin-top: 1.5em; padding-top: 0.5em; }
p.question { font-weight: 600; }
div.cand { border: 1px solid #ddd; border-radius: 4px; margin: 0.4em 0; padding: 0.3em 0.6em; }
div.cand.selected { border: 2px solid #1a5fb4; }
div.step { padding: 0.1em 0.4em; margin: 0.1em 0; border-radius: 3px; font-family: ui-monospace, monospace;
  font-size: 0.85em; white-space: pre-wrap; }
span.tag { font-size: 0.75em; padding: 0.05em 0.4em; border-radius: 3px; margin-right: 0.4em; }
span.ok { background: #2e7d32; color: white; } span.bad { background: #b71c1c; color: white; }
span.sel { background: #1a5fb4; color: white; }
span.score { float: right; color: #555; font-size: 0.8em; }
"""


def html_report(
    path: str | os.PathLike,
    *,
    title: str,
    summary: str,
    table_md: str,
    plot: str | os.PathLike | None,
    problems: Sequence[dict],
) -> None:
    """Write the page. `problems`: dicts with `problem`, `answer`, `majority` (answer or None) and `candidates`,
    each candidate a dict with `steps`, `scores`, `score` (the selector's aggregate), `answer`, `correct` and
    `selected`. Candidates are shown in the given order."""
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{esc(summary)}</p>",
        _md_table_html(table_md),
    ]
    if plot is not None and Path(plot).exists():
        data = base64.b64encode(Path(plot).read_bytes()).decode("ascii")
        out.append(f'<p><img alt="accuracy against N" src="data:image/png;base64,{data}"></p>')
    out.append(
        "<p>Each step is coloured by its PRM score: "
        f'<span class="tag" style="background:{_colour(0.0)}">0.0 likely wrong</span>'
        f'<span class="tag" style="background:{_colour(0.5)}">0.5</span>'
        f'<span class="tag" style="background:{_colour(1.0)}">1.0 likely right</span></p>'
    )
    for i, p in enumerate(problems):
        out.append(f'<section class="problem" id="problem-{i}">')
        out.append(f"<h2>Problem {i + 1}</h2>")
        out.append(f'<p class="question">{esc(p["problem"])}</p>')
        maj = p.get("majority")
        out.append(
            f"<p>Gold answer: <b>{esc(str(p['answer']))}</b>; majority answer: {esc(str(maj)) if maj else 'none'}</p>"
        )
        for c in p["candidates"]:
            cls = "cand selected" if c["selected"] else "cand"
            tags = '<span class="tag sel">selected</span>' if c["selected"] else ""
            tags += '<span class="tag ok">correct</span>' if c["correct"] else '<span class="tag bad">wrong</span>'
            out.append(
                f'<div class="{cls}">{tags}answer {esc(str(c["answer"]))}'
                f'<span class="score">aggregate {c["score"]:.3f}</span>'
            )
            for step, s in zip(c["steps"], c["scores"], strict=True):
                out.append(
                    f'<div class="step" style="background:{_colour(s)}" title="PRM score {s:.3f}">{esc(step)}</div>'
                )
            out.append("</div>")
        out.append("</section>")
    out.append("</body></html>")
    with atomic_write(path) as f:
        f.write("\n".join(out) + "\n")


def _md_table_html(table_md: str) -> str:
    """The Markdown accuracy table as an HTML table (the same figures, one source)."""
    rows = [r.strip().strip("|").split("|") for r in table_md.strip().splitlines()]
    head, body = rows[0], rows[2:]
    esc = html.escape
    out = ['<table class="acc"><tr>' + "".join(f"<th>{esc(c.strip())}</th>" for c in head) + "</tr>"]
    for r in body:
        out.append("<tr>" + "".join(f"<td>{esc(c.strip())}</td>" for c in r) + "</tr>")
    return "\n".join(out) + "</table>"
