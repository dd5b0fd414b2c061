from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import d2lite.data.transforms as T
from d2lite.config import get_cfg
from d2lite.data import DatasetMapper
from d2lite.data.datasets import load_coco_json
from d2lite.structures import Boxes, Instances


@pytest.fixture
def dicts(coco_dir):
    json_file, root = coco_dir
    return load_coco_json(str(json_file), str(root))


def _cfg(min_size=60, flip="none"):
    cfg = get_cfg()
    cfg.INPUT.MIN_SIZE_TRAIN = (min_size,)
    cfg.INPUT.MAX_SIZE_TRAIN = 1000
    cfg.INPUT.MIN_SIZE_TEST = min_size
    cfg.INPUT.RANDOM_FLIP = flip
    return cfg


def test_train_mapping_from_cfg(dicts):
    original = copy.deepcopy(dicts[0])
    out = DatasetMapper(_cfg(min_size=60), is_train=True)(dicts[0])
    assert dicts[0] == original  # the input dict is not modified
    img = out["image"]
    assert img.dtype == torch.uint8 and img.shape == (3, 60, 80)
    assert img[2, 10, 20] == 255 and img[0, 10, 20] == 0  # BGR: red lands in channel 2
    inst = out["instances"]
    assert isinstance(inst, Instances) and isinstance(inst.gt_boxes, Boxes)
    assert inst.image_size == (60, 80)
    assert torch.allclose(inst.gt_boxes.tensor, torch.tensor([[10.0, 4, 30, 24], [40, 20, 70, 50]]))
    assert inst.gt_classes.tolist() == [0, 1]
    assert "annotations" not in out
    assert (out["height"], out["width"], out["image_id"]) == (30, 40, 1)


def test_train_mapping_image_without_annotations(dicts):
    out = DatasetMapper(_cfg(min_size=16), True)(dicts[3])
    assert len(out["instances"]) == 0 and out["instances"].gt_boxes.tensor.shape == (0, 4)


def test_test_mapping_drops_annotations(dicts):
    out = DatasetMapper(_cfg(min_size=15), is_train=False)(dicts[0])
    assert "annotations" not in out and "instances" not in out
    assert out["image"].shape == (3, 15, 20)


def test_explicit_kwargs_and_overrides(dicts):
    mapper = DatasetMapper(
        is_train=True, augmentations=[T.RandomFlip(prob=1.0)], image_format="RGB"
    )
    out = mapper(dicts[0])
    assert out["image"].shape == (3, 30, 40) and out["image"][0, 2, 34] == 255
    assert out["instances"].gt_boxes.tensor[0].tolist() == [25, 2, 35, 12]
    positional = DatasetMapper(True, augmentations=[], image_format="L")(dicts[0])
    assert positional["image"].shape == (1, 30, 40)
    overridden = DatasetMapper(_cfg(), True, augmentations=[T.Resize((10, 10))])(dicts[0])
    assert overridden["image"].shape == (3, 10, 10)
    with pytest.raises(TypeError, match="augmentations"):
        DatasetMapper(is_train=True)


def test_crop_from_cfg_and_crowd_dropped(dicts):
    cfg = _cfg(min_size=30)
    cfg.INPUT.CROP.ENABLED = True
    cfg.INPUT.CROP.TYPE = "absolute"
    cfg.INPUT.CROP.SIZE = [20, 20]
    mapper = DatasetMapper(cfg, True)
    assert isinstance(mapper.augmentations.augs[0], T.RandomCrop)
    d = copy.deepcopy(dicts[0])
    d["annotations"][1]["iscrowd"] = 1
    out = mapper(d)
    assert out["image"].shape == (3, 30, 30)
    assert len(out["instances"]) <= 1


def test_size_mismatch_names_file(dicts):
    d = dict(dicts[0], width=41)
    with pytest.raises(ValueError, match=r"a\.png.*\(40, 30\).*\(41, 30\)"):
        DatasetMapper(_cfg(), True)(d)


def test_missing_image_names_file(dicts):
    d = dict(dicts[0], file_name="/does/not/exist.png")
    with pytest.raises(FileNotFoundError, match="exist.png"):
        DatasetMapper(_cfg(), True)(d)


class _ToFloat(T.Transform):
    """A user transform that (wrongly) leaves a float image."""

    def apply_image(self, img):
        return img.astype(np.float32)

    def apply_coords(self, coords):
        return coords


def test_output_checked_at_boundary(dicts):
    mapper = DatasetMapper(True, augmentations=[_ToFloat()], image_format="BGR")
    with pytest.raises(AssertionError, match=r"a\.png.*uint8"):
        mapper(dicts[0])


def test_mapper_and_dataset_pickle_for_spawned_workers(dicts):
    import pickle

    from d2lite.data import DatasetFromList, MapDataset, ToIterableDataset
    from d2lite.data.samplers import TrainingSampler

    mapper = DatasetMapper(_cfg(min_size=20), True)
    dataset = ToIterableDataset(
        MapDataset(DatasetFromList(dicts, copy=False), mapper), TrainingSampler(4, seed=0)
    )
    restored = pickle.loads(pickle.dumps(dataset))
    out = next(iter(restored))
    assert min(out["image"].shape[1:]) == 20


@pytest.mark.parametrize("arg", ["use_instance_mask", "use_keypoint", "recompute_boxes"])
def test_masks_and_keypoints_are_refused_clearly(arg):
    with pytest.raises(NotImplementedError, match=f"{arg}=True.*boxes only"):
        DatasetMapper(True, augmentations=[], image_format="BGR", **{arg: True})
    cfg = _cfg()
    cfg.MODEL.MASK_ON = True
    with pytest.raises(NotImplementedError, match="use_instance_mask"):
        DatasetMapper(cfg, True)


def test_cfg_forms_fill_detectron2_attributes():
    mapper = DatasetMapper(_cfg(), is_train=False)
    assert mapper.is_train is False and mapper.image_format == "BGR"
    assert not mapper.use_instance_mask and not mapper.use_keypoint
    assert mapper.proposal_topk is None and mapper.instance_mask_format == "polygon"
    assert DatasetMapper.from_config(_cfg())["is_train"] is True


def test_segmentation_and_keypoints_in_the_dict_are_ignored(dicts):
    d = copy.deepcopy(dicts[0])
    d["annotations"][0]["segmentation"] = [[5, 2, 15, 2, 15, 12]]
    d["annotations"][0]["keypoints"] = [6, 3, 2]
    out = DatasetMapper(_cfg(min_size=30), True)(d)
    assert set(out["instances"].get_fields()) == {"gt_boxes", "gt_classes"}


def test_precomputed_proposals_become_instances(dicts):
    cfg = _cfg(min_size=60)
    cfg.MODEL.LOAD_PROPOSALS = True
    cfg.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TEST = 1
    d = dict(
        dicts[0],
        proposal_boxes=np.array([[0.0, 0, 10, 10], [5, 5, 20, 20]]),
        proposal_objectness_logits=np.array([2.0, 1.0]),
        proposal_bbox_mode=0,
    )
    out = DatasetMapper(cfg, is_train=False)(d)
    assert out["proposals"].proposal_boxes.tensor.tolist() == [[0, 0, 20, 20]]  # x2, top 1
    assert "proposal_boxes" not in out
