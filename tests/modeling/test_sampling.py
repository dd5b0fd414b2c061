import torch

from d2lite.modeling.sampling import get_sampling_generator, sampling_generators, subsample_labels


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


def test_a_generator_makes_the_draw_repeatable_and_leaves_the_global_rng_alone():
    labels = torch.tensor([1] * 50 + [0] * 100)
    state = torch.get_rng_state()
    first = subsample_labels(labels, 20, 0.5, 0, generator=torch.Generator().manual_seed(7))
    again = subsample_labels(labels, 20, 0.5, 0, generator=torch.Generator().manual_seed(7))
    other = subsample_labels(labels, 20, 0.5, 0, generator=torch.Generator().manual_seed(8))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])
    assert len(first[0]) == 10 and len(first[1]) == 10


def test_without_a_generator_the_global_rng_draws_as_before():
    labels = torch.tensor([1] * 50 + [0] * 100)
    torch.manual_seed(3)
    state = torch.get_rng_state()
    first = subsample_labels(labels, 20, 0.5, 0)
    assert not torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(3)
    # The draw of Detectron2's subsample_labels: one randperm per class, positives first.
    perm_pos = torch.randperm(50)[:10]
    perm_neg = torch.randperm(100)[:10]
    assert torch.equal(first[0], perm_pos) and torch.equal(first[1], 50 + perm_neg)


def test_sampling_generators_are_scoped_to_the_with_block():
    assert get_sampling_generator(0) is None
    gens = [torch.Generator(), torch.Generator()]
    with sampling_generators(gens):
        assert get_sampling_generator(1) is gens[1]
        with sampling_generators(None):
            assert get_sampling_generator(0) is None
        assert get_sampling_generator(0) is gens[0]
    assert get_sampling_generator(0) is None
