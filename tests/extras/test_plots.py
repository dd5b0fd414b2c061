from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from d2lite.extras.plots import (
    confusion_matrix,
    plot_confusion_matrix,
    plot_pr_curves,
    save_confusion_matrix_csv,
)

CAT, DOG, BIRD, BG = 0, 1, 2, 3


def _t(rows: list) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def _hand_made_case() -> tuple[list, list]:
    box1, box2, box3 = [0, 0, 10, 10], [20, 20, 40, 40], [50, 0, 70, 20]
    gt = [
        (_t([box1, box2, box3]), torch.tensor([CAT, DOG, CAT])),
        (_t([]), torch.zeros(0, dtype=torch.long)),
        (_t([[0, 0, 30, 30]]), torch.tensor([BIRD])),
    ]
    dt = [
        (
            _t([box1, [21, 21, 40, 40], [0, 0, 10, 9], [80, 80, 90, 90], [50, 0, 70, 20]]),
            torch.tensor([0.9, 0.8, 0.6, 0.7, 0.3]),
            # box1 right; box2 called a cat; a duplicate on box1 (box1 already taken: a false
            # positive); a bird on nothing; a dog on box3 below the score threshold.
            torch.tensor([CAT, CAT, CAT, BIRD, DOG]),
        ),
        (_t([[5, 5, 15, 15]]), torch.tensor([0.95]), torch.tensor([DOG])),
        (_t([]), torch.zeros(0), torch.zeros(0, dtype=torch.long)),
    ]
    return gt, dt


def test_confusion_matrix_hand_made_counts():
    gt, dt = _hand_made_case()
    matrix = confusion_matrix(gt, dt, num_classes=3)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[CAT, CAT] = 1  # box1
    expected[DOG, CAT] = 1  # box2 predicted as cat
    expected[CAT, BG] = 1  # box3 missed (its only detection scores 0.3)
    expected[BG, CAT] = 1  # duplicate on box1
    expected[BG, BIRD] = 1  # bird on background
    expected[BG, DOG] = 1  # detection on an image without GT
    expected[BIRD, BG] = 1  # image with GT and no detections
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.dtype == np.int64
    # Every GT box lands in exactly one cell of its row.
    assert matrix[:3].sum() == 4


def test_confusion_matrix_thresholds():
    gt, dt = _hand_made_case()
    low = confusion_matrix(gt, dt, num_classes=3, score_threshold=0.0)
    assert low[CAT, DOG] == 1 and low[CAT, BG] == 0
    strict = confusion_matrix(gt, dt, num_classes=3, iou_threshold=0.95)
    # box2's detection overlaps with IoU 0.9025 < 0.95: a false positive plus a miss.
    assert strict[DOG, CAT] == 0 and strict[DOG, BG] == 1 and strict[BG, CAT] == 2


def test_confusion_matrix_greedy_prefers_higher_score():
    gt = [(_t([[0, 0, 10, 10]]), torch.tensor([CAT]))]
    boxes = _t([[0, 0, 10, 10], [0, 0, 10, 10]])
    dt = [(boxes, torch.tensor([0.6, 0.9]), torch.tensor([CAT, DOG]))]
    matrix = confusion_matrix(gt, dt, num_classes=2)
    assert matrix[CAT, DOG] == 1 and matrix[2, CAT] == 1 and matrix[CAT, CAT] == 0


def test_confusion_matrix_length_mismatch():
    with pytest.raises(ValueError, match="2 GT images but 1 detection images"):
        confusion_matrix([None, None], [None], num_classes=1)


def test_confusion_matrix_csv_and_png(tmp_path):
    gt, dt = _hand_made_case()
    matrix = confusion_matrix(gt, dt, num_classes=3)
    names = ["cat", "dog", "bird"]
    save_confusion_matrix_csv(matrix, names, str(tmp_path / "cm.csv"))
    with open(tmp_path / "cm.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["gt \\ pred", "cat", "dog", "bird", "background"]
    assert rows[2] == ["dog", "1", "0", "0", "0"]
    assert rows[4] == ["background", "1", "1", "1", "0"]
    plot_confusion_matrix(matrix, names, str(tmp_path / "sub" / "cm.png"))
    assert (tmp_path / "sub" / "cm.png").read_bytes()[:4] == b"\x89PNG"


def test_pr_curves_png_skips_classes_without_gt(tmp_path):
    recall = np.linspace(0, 1, 101)
    precision = np.stack([np.ones(101), -np.ones(101)], axis=1)
    plot_pr_curves(precision, recall, ["cat", "ghost"], str(tmp_path / "pr.png"))
    assert (tmp_path / "pr.png").read_bytes()[:4] == b"\x89PNG"


def _titled_axes(fig) -> dict:
    # The colorbars are axes too; the panels are the titled ones.
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


def test_confusion_matrix_picture_says_its_thresholds_and_normalises_rows(tmp_path):
    gt, dt = _hand_made_case()
    matrix = confusion_matrix(gt, dt, num_classes=3, iou_threshold=0.6, score_threshold=0.3)
    fig = plot_confusion_matrix(
        matrix, ["cat", "dog", "bird"], str(tmp_path / "cm.png"), iou_threshold=0.6,
        score_threshold=0.3,
    )  # fmt: skip
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
    title = fig._suptitle.get_text()
    assert "IoU ≥ 0.6" in title and "scoring below 0.3 are left out" in title
    panels = _titled_axes(fig)
    counts = panels["Counts"]
    shares = panels["Share of each row (a ground-truth class sums to 100%)"]
    np.testing.assert_array_equal(counts.get_images()[0].get_array(), matrix)
    share_values = np.asarray(shares.get_images()[0].get_array())
    np.testing.assert_allclose(share_values.sum(axis=1), 1.0)  # every row has a count here
    np.testing.assert_allclose(share_values[BG], matrix[BG] / matrix[BG].sum())
    for ax in (counts, shares):
        assert [t.get_text() for t in ax.get_yticklabels()][-1] == "background\n(false positive)"
        assert [t.get_text() for t in ax.get_xticklabels()][-1] == "background\n(missed)"
        assert "no detection matched" in ax.get_xlabel()
    assert "matched no ground truth" in counts.get_ylabel()
    # Empty cells carry no text; the others their count, or their row share in percent.
    assert sorted(t.get_text() for t in counts.texts) == sorted(
        str(v) for v in matrix.ravel() if v
    )
    assert {t.get_text() for t in shares.texts} >= {"100%"}
    assert all(t.get_text().endswith("%") for t in shares.texts)


def _pr_case(num_classes: int, no_gt: tuple[int, ...] = ()) -> np.ndarray:
    recall = np.linspace(0, 1, 101)
    precision = np.stack([1 - recall * (k + 1) / (num_classes + 1) for k in range(num_classes)], 1)
    precision[:, list(no_gt)] = -1
    return precision


def test_pr_curves_legend_sits_outside_and_names_classes_without_gt(tmp_path):
    names = [f"class {k}" for k in range(12)]
    fig = plot_pr_curves(_pr_case(12, no_gt=(3,)), np.linspace(0, 1, 101), names,
                         str(tmp_path / "pr.png"))  # fmt: skip
    ax = fig.axes[0]
    assert "classes without ground truth (no curve): 1 of 12" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == 12 and legend[3] == "class 3: no ground truth"
    assert legend[0] == "class 0 (AP50 96.2)"  # 1 - 0.5 / 13: the mean over recall thresholds
    assert len(ax.get_lines()) == 11  # no flat line for the class without ground truth
    # Every curve looks different (10+ classes: the default colour cycle would repeat).
    assert len({(line.get_color(), line.get_linestyle()) for line in ax.get_lines()}) == 11
    renderer = fig.canvas.get_renderer()
    outside = ax.get_legend().get_window_extent(renderer).x0
    assert outside > ax.get_window_extent(renderer).x1


def test_pr_curves_many_classes_use_legend_columns_and_distinct_styles():
    names = [f"c{k}" for k in range(45)]
    ax = plot_pr_curves(_pr_case(45), np.linspace(0, 1, 101), names).axes[0]
    assert ax.get_legend()._ncols == 3
    assert len({(line.get_color(), line.get_linestyle()) for line in ax.get_lines()}) == 45


def test_pr_curves_without_any_ground_truth_say_so():
    ax = plot_pr_curves(_pr_case(2, no_gt=(0, 1)), np.linspace(0, 1, 101), ["a", "b"]).axes[0]
    assert not ax.get_lines()
    assert [t.get_text() for t in ax.texts] == ["No class has ground truth here"]
