import pytest
import torch

from d2lite.modeling.postprocessing import detector_postprocess
from d2lite.structures import Boxes, Instances


def test_rescale_clip_and_drop_empty():
    r = Instances((50, 100))
    r.pred_boxes = Boxes(torch.tensor([[10.0, 5, 20, 25], [90, 40, 120, 60], [110, 0, 130, 10]]))
    r.scores = torch.tensor([0.9, 0.8, 0.7])
    out = detector_postprocess(r, 100, 300)
    assert out.image_size == (100, 300)
    # x scales by 3, y by 2; the second box is clipped; the third lies outside and is dropped.
    torch.testing.assert_close(
        out.pred_boxes.tensor, torch.tensor([[30.0, 10, 60, 50], [270, 80, 300, 100]])
    )
    assert out.scores.tolist() == pytest.approx([0.9, 0.8])
    assert r.pred_boxes.tensor[0].tolist() == [10.0, 5, 20, 25]  # the input is not modified


def test_proposals_and_missing_boxes():
    r = Instances((10, 10), proposal_boxes=Boxes(torch.tensor([[1.0, 1, 5, 5]])))
    out = detector_postprocess(r, 20, 20)
    torch.testing.assert_close(out.proposal_boxes.tensor, torch.tensor([[2.0, 2, 10, 10]]))
    with pytest.raises(ValueError, match="pred_boxes or proposal_boxes"):
        detector_postprocess(Instances((10, 10), scores=torch.zeros(1)), 20, 20)
