"""Training curves from metrics.json: what is drawn (read back from the figure) and the CLI."""
from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from d2lite.utils.plot_metrics import load_metrics, main, plot_training_curves


def _write_metrics(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _run_rows(iters, with_eval=False):
    rows = [
        {"iteration": i, "total_loss": 2.0 / (i + 1), "loss_cls": 1.0 / (i + 1),
         "loss_box_reg": 0.5 / (i + 1), "lr": 0.01 * min(1.0, (i + 1) / 20), "time": 0.1}
        for i in iters
    ]  # fmt: skip
    if with_eval:
        rows.append({"iteration": iters[-1] + 1, "bbox/AP": 12.5, "bbox/AP50": 30.0})
    return rows


def _lines(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def test_curves_show_losses_lr_and_ap_from_metrics_json(tmp_path):
    _write_metrics(tmp_path / "metrics.json", _run_rows([19, 39, 59], with_eval=True))
    fig = plot_training_curves(str(tmp_path), str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 1000
    losses, lr, evaluation = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["Losses", "Learning rate", "Evaluation"]
    assert str(tmp_path) in fig.texts[0].get_text()  # the suptitle names the run
    assert list(_lines(losses)) == ["total_loss", "loss_box_reg", "loss_cls"]
    assert losses.get_lines()[0].get_linewidth() > losses.get_lines()[1].get_linewidth()
    assert losses.get_yscale() == "log"
    np.testing.assert_allclose(_lines(losses)["total_loss"].get_ydata(), [0.1, 0.05, 2 / 60])
    np.testing.assert_array_equal(_lines(lr)["_child0"].get_xdata(), [19, 39, 59])
    np.testing.assert_allclose(lr.get_lines()[0].get_ydata(), [0.01, 0.01, 0.01])
    assert list(_lines(evaluation)) == ["bbox/AP", "bbox/AP50"]
    assert list(_lines(evaluation)["bbox/AP50"].get_xdata()) == [60]
    assert evaluation.get_xlabel() == "iteration"
    legend = [t.get_text() for t in losses.get_legend().get_texts()]
    assert legend == ["total_loss", "loss_box_reg", "loss_cls"]


def test_no_evaluation_panel_without_ap_and_validation_loss_is_dashed(tmp_path):
    rows = _run_rows([9, 19])
    rows[1]["val_total_loss"] = 0.3
    fig = plot_training_curves(rows)
    assert [ax.get_title() for ax in fig.axes] == ["Losses", "Learning rate"]
    val = _lines(fig.axes[0])["val_total_loss"]
    assert val.get_linestyle() == "--" and list(val.get_xdata()) == [19]


def test_load_metrics_keeps_the_last_run_and_skips_broken_lines(tmp_path):
    path = tmp_path / "metrics.json"
    first, second = _run_rows([19, 39]), _run_rows([9, 19])
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in first + second) + '{"iteration": 29, "tot'
    )
    assert [r["iteration"] for r in load_metrics(str(path))] == [9, 19]


def test_nothing_to_draw_is_a_clear_error(tmp_path):
    _write_metrics(tmp_path / "metrics.json", [{"iteration": 0, "lr": 0.1}])
    with pytest.raises(ValueError, match="no loss to draw"):
        plot_training_curves(str(tmp_path / "metrics.json"))
    with pytest.raises(FileNotFoundError):
        plot_training_curves(str(tmp_path / "nowhere"))


def test_cli_writes_next_to_metrics_or_to_out(tmp_path, monkeypatch):
    _write_metrics(tmp_path / "metrics.json", _run_rows([19, 39]))
    assert main([str(tmp_path)]) == str(tmp_path / "training_curves.png")
    assert (tmp_path / "training_curves.png").is_file()
    # The script, run as a script (in this process: a subprocess would cost seconds).
    out = tmp_path / "elsewhere" / "c.png"
    script = Path(__file__).resolve().parents[2] / "tools" / "plot_metrics.py"
    argv = [str(script), str(tmp_path / "metrics.json"), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(script), run_name="__main__")
    assert out.stat().st_size > 1000
