"""Training curves from ``metrics.json``: the losses, the learning rate and, when a run
evaluated, its AP, against the iteration, in one PNG.

``TrainingCurvesWriter`` (:mod:`d2lite.engine.writers`) draws ``OUTPUT_DIR/training_curves.png``
when training ends; ``tools/plot_metrics.py OUTPUT_DIR`` draws it from any run, even one still
going or killed. matplotlib is imported only when a figure is drawn, so importing this module
(and ``d2lite``) stays light.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
from typing import TYPE_CHECKING, Any, Sequence

from d2lite.utils.file_io import atomic_output
from d2lite.utils.logger import setup_logger

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["load_metrics", "plot_training_curves", "save_figure", "main"]

logger = logging.getLogger(__name__)

# Evaluation scalars worth a panel; EvalHook puts them as "<dataset or task>/<metric>".
_EVAL_SUFFIXES = ("/AP", "/AP50")
# Up to this many points per curve get markers: a short run's few points must stay visible.
_MARKED_POINTS = 30


def load_metrics(path: str) -> list[dict[str, Any]]:
    """Reads the rows of a ``metrics.json`` (one JSON object per line).

    Lines that are not JSON objects (a line half-written by a killed run) are skipped. A run
    from iteration 0 appends to the file of an earlier run (as in Detectron2), so when the
    iterations go back, only the rows after the last restart are kept.

    Args:
        path (str): a ``metrics.json`` file, or a directory holding one.

    Returns:
        list[dict]: the rows of the last run, in file order.

    Raises:
        FileNotFoundError: if there is no such file.
    """
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.json")
    rows: list[dict[str, Any]] = []
    with open(path) as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(row, dict) or "iteration" not in row:
                continue
            if rows and row["iteration"] < rows[-1]["iteration"]:
                rows = []  # a new run started here
            rows.append(row)
    return rows


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["iteration"], float(r[key])) for r in rows if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _keys(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _plot_losses(ax: Axes, rows: list[dict[str, Any]], keys: Sequence[str]) -> None:
    # total_loss first and thick: it is the one the optimiser sees; parts in thin lines.
    order = sorted(keys, key=lambda k: (k.startswith("val_"), k != "total_loss", k))
    values: list[float] = []
    for key in order:
        its, vals = _series(rows, key)
        values += vals
        marker = "o" if len(its) <= _MARKED_POINTS or key.startswith("val_") else None
        style = "--" if key.startswith("val_") else "-"
        width = 2.0 if key == "total_loss" else 1.0
        ax.plot(its, vals, style, marker=marker, markersize=3, linewidth=width, label=key)
    # Detection losses fall by orders of magnitude; a log axis keeps the late part readable.
    if values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_ylabel("loss (median of the window)")
    ax.set_title("Losses")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _plot_lr(ax: Axes, rows: list[dict[str, Any]]) -> None:
    from matplotlib.ticker import FuncFormatter

    its, vals = _series(rows, "lr")
    marker = "o" if len(its) <= _MARKED_POINTS else None
    ax.plot(its, vals, color="tab:orange", marker=marker, markersize=3)
    ax.set_ylabel("learning rate")
    ax.set_title("Learning rate")
    # "0.001" on each tick, not an offset "1e-3" that sits on the panel's title.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))


def _plot_eval(ax: Axes, rows: list[dict[str, Any]], keys: Sequence[str]) -> None:
    for key in keys:
        its, vals = _series(rows, key)
        ax.plot(its, vals, "o-", markersize=4, label=key)
    ax.set_ylabel("AP (%)")
    ax.set_title("Evaluation")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def plot_training_curves(
    metrics: str | list[dict[str, Any]], path: str | None = None, *, title: str | None = None
) -> Figure:
    """Draws the losses, the learning rate and the evaluation AP (when there is one) against
    the iteration, one panel each, sharing the iteration axis.

    Args:
        metrics (str | list[dict]): a ``metrics.json`` path (or its directory), or its rows.
        path (str | None): PNG to write. Defaults to None (only return the figure).
        title (str | None): the figure's title. Defaults to None ("Training curves", with
            the directory of ``metrics`` when it is a path).

    Returns:
        Figure: the matplotlib figure (its axes titled "Losses", "Learning rate" and
        "Evaluation").

    Raises:
        ValueError: if there is no loss to draw.
    """
    from matplotlib.figure import Figure  # drawing only: importing matplotlib costs ~0.4 s

    if isinstance(metrics, str):
        source = os.path.abspath(metrics if os.path.isdir(metrics) else os.path.dirname(metrics))
        title = title or f"Training curves: {source}"
        metrics = load_metrics(metrics)
    keys = _keys(metrics)
    loss_keys = [k for k in keys if "loss" in k]
    if not loss_keys:
        raise ValueError("metrics.json has no loss to draw (no key containing 'loss')")
    eval_keys = [k for k in keys if k.endswith(_EVAL_SUFFIXES)]
    num_panels = 2 + bool(eval_keys)
    fig = Figure(figsize=(9, 2.6 * num_panels + 0.6))
    axes = fig.subplots(num_panels, 1, sharex=True, squeeze=False)[:, 0]
    _plot_losses(axes[0], metrics, loss_keys)
    _plot_lr(axes[1], metrics)
    if eval_keys:
        _plot_eval(axes[2], metrics, eval_keys)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("iteration")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title or "Training curves", fontsize=10)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig: Figure, path: str, dpi: int = 100) -> None:
    """Writes ``fig`` to ``path`` atomically (the format follows the extension), through an
    Agg canvas, so pyplot's global state and backend stay untouched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    # The temporary file keeps the extension, from which savefig picks the format.
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")


def main(argv: list[str] | None = None) -> str:
    """``tools/plot_metrics.py OUTPUT_DIR_or_metrics.json [--out PNG]``; returns the PNG path."""
    parser = argparse.ArgumentParser(description="Draw a run's losses and LR from metrics.json.")
    parser.add_argument("metrics", help="a training OUTPUT_DIR or its metrics.json")
    parser.add_argument(
        "--out", help="the PNG to write. Defaults to training_curves.png next to metrics.json"
    )
    args = parser.parse_args(argv)
    setup_logger()
    folder = args.metrics if os.path.isdir(args.metrics) else os.path.dirname(args.metrics)
    out = args.out or os.path.join(folder, "training_curves.png")
    plot_training_curves(args.metrics, out)
    logger.info(f"Wrote {out}")
    return out
