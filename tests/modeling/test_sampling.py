import torch

from d2lite.modeling.sampling import subsample_labels


def test_positive_fraction_respected():
    torch.manual_seed(0)
    labels = torch.tensor([1] * 50 + [0] * 100 + [-1] * 20)
    pos, neg = subsample_labels(labels, 64, 0.25, 0)
    assert len(pos) == 16 and len(neg) == 48
    assert (labels[pos] == 1).all() and (labels[neg] == 0).all()
    assert len(set(pos.tolist())) == 16


def test_few_positives_filled_with_negatives():
    labels = torch.tensor([1] * 3 + [0] * 100)
    pos, neg = subsample_labels(labels, 20, 0.5, 0)
    assert len(pos) == 3 and len(neg) == 17


def test_bg_label_is_num_classes_and_ignored_never_sampled():
    labels = torch.tensor([0, 1, 2, 2, -1, 2, 1])
    pos, neg = subsample_labels(labels, 100, 0.5, bg_label=2)
    assert sorted(pos.tolist()) == [0, 1, 6]
    assert sorted(neg.tolist()) == [2, 3, 5]


def test_empty_labels():
    pos, neg = subsample_labels(torch.zeros(0, dtype=torch.int64), 10, 0.5, 0)
    assert pos.numel() == 0 and neg.numel() == 0
