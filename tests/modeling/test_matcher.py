import pytest
import torch

from d2lite.modeling.matcher import Matcher


def test_labels_by_thresholds():
    matcher = Matcher([0.3, 0.7], [0, -1, 1])
    iou = torch.tensor([[0.1, 0.5, 0.8, 0.0], [0.2, 0.4, 0.9, 0.3]])
    matches, labels = matcher(iou)
    assert matches.tolist() == [1, 0, 1, 1]
    # 0.3 sits on a threshold: intervals include their lower bound, so it is ignored (-1).
    assert labels.tolist() == [0, -1, 1, -1]
    assert matches.dtype == torch.int64 and labels.dtype == torch.int8


def test_low_quality_matches_give_every_gt_a_positive():
    iou = torch.tensor([[0.4, 0.4, 0.1], [0.05, 0.2, 0.35]])
    _, labels = Matcher([0.3, 0.7], [0, -1, 1])(iou)
    assert labels.tolist() == [-1, -1, -1]
    matches, labels = Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=True)(iou)
    # gt 0 ties on preds 0 and 1 (both kept); gt 1's best is pred 2.
    assert labels.tolist() == [1, 1, 1]
    assert matches.tolist() == [0, 0, 1]


def test_empty_gt_labels_everything_background():
    matches, labels = Matcher([0.5], [0, 1])(torch.zeros(0, 5))
    assert matches.tolist() == [0] * 5
    assert labels.tolist() == [0] * 5
    _, labels = Matcher([0.3, 0.7], [-1, 0, 1])(torch.zeros(0, 3))
    assert labels.tolist() == [-1] * 3


def test_no_predictions():
    matches, labels = Matcher([0.5], [0, 1])(torch.zeros(2, 0))
    assert matches.shape == (0,) and labels.shape == (0,)


def test_bad_arguments():
    with pytest.raises(ValueError, match="increasing"):
        Matcher([0.7, 0.3], [0, -1, 1])
    with pytest.raises(ValueError, match="labels"):
        Matcher([0.5], [0, 2])
    with pytest.raises(ValueError, match="len"):
        Matcher([0.5], [0, -1, 1])
