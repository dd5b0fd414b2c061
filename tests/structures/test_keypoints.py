import pytest
import torch

from d2lite.structures import Keypoints, heatmaps_to_keypoints


def test_keypoints_import_and_raise():
    with pytest.raises(NotImplementedError, match="Keypoints.*keypoint"):
        Keypoints(torch.zeros(1, 17, 3))
    with pytest.raises(NotImplementedError, match="heatmaps_to_keypoints"):
        heatmaps_to_keypoints(torch.zeros(1, 17, 56, 56), torch.zeros(1, 4))
