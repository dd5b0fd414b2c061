from __future__ import annotations

import copy
import itertools
import logging

import numpy as np
import pytest
import torch

import d2lite.data.transforms as T
from d2lite.config import get_cfg
from d2lite.data import (
    DatasetCatalog,
    DatasetMapper,
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
)
from d2lite.data import detection_utils as utils
from d2lite.data import get_detection_dataset_dicts, trivial_batch_collator
from d2lite.data.datasets import register_coco_instances
from d2lite.data.samplers import InferenceSampler, RepeatFactorTrainingSampler, TrainingSampler

pytestmark = pytest.mark.usefixtures("clean_catalogs")


@pytest.fixture
def registered(coco_dir):
    json_file, root = coco_dir
    register_coco_instances("build_train", {}, str(json_file), str(root))
    return "build_train"


def _cfg(name: str, **dataloader):
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = (name,)
    cfg.DATASETS.TEST = (name,)
    cfg.SOLVER.IMS_PER_BATCH = 2
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.INPUT.MIN_SIZE_TRAIN = (20,)
    cfg.INPUT.MIN_SIZE_TEST = 20
    for k, v in dataloader.items():
        setattr(cfg.DATALOADER, k, v)
    return cfg


def test_get_detection_dataset_dicts_filters_and_logs(registered, caplog):
    with caplog.at_level(logging.INFO, logger="d2lite.data"):
        dicts = get_detection_dataset_dicts([registered])
    assert [d["image_id"] for d in dicts] == [1, 2, 3]
    assert "Removed 1 images" in caplog.text and "red" in caplog.text
    assert len(get_detection_dataset_dicts(registered, filter_empty=False)) == 4


def test_get_detection_dataset_dicts_errors(registered):
    DatasetCatalog.register("build_empty", list)
    with pytest.raises(ValueError, match="'build_empty' is empty"):
        get_detection_dataset_dicts([registered, "build_empty"])
    with pytest.raises(KeyError, match="build_nope"):
        get_detection_dataset_dicts(["build_nope"])
    DatasetCatalog.register("build_no_anns", lambda: [{"file_name": "x", "annotations": []}])
    with pytest.raises(ValueError, match="No valid data found in build_no_anns"):
        get_detection_dataset_dicts("build_no_anns")
    DatasetCatalog.register("build_other", lambda: DatasetCatalog.get(registered))
    MetadataCatalog.get("build_other").thing_classes = ["green", "red"]
    DatasetCatalog.get(registered)
    with pytest.raises(ValueError, match="thing_classes"):
        get_detection_dataset_dicts([registered, "build_other"])
    # Proposal files are loaded now (Detectron2's behaviour); a count that does not match the
    # datasets is still refused with a ValueError, and a missing file names itself.
    with pytest.raises(ValueError, match="proposal"):
        get_detection_dataset_dicts(registered, proposal_files=["p.pkl", "q.pkl"])
    with pytest.raises(FileNotFoundError, match="p.pkl"):
        get_detection_dataset_dicts(registered, proposal_files=["p.pkl"])
    with pytest.raises(ValueError, match="min_keypoints"):
        get_detection_dataset_dicts(registered, min_keypoints=1)
    cfg = _cfg(registered)
    cfg.DATASETS.TRAIN = ()
    with pytest.raises(ValueError, match="DATASETS.TRAIN is empty"):
        build_detection_train_loader(cfg)


def test_train_loader_from_cfg_groups_aspect_ratio(registered):
    loader = build_detection_train_loader(_cfg(registered))
    batches = list(itertools.islice(loader, 4))
    for batch in batches:
        assert isinstance(batch, list) and len(batch) == 2
        landscape = {d["width"] > d["height"] for d in batch}
        assert len(landscape) == 1
        for d in batch:
            assert d["image"].dtype == torch.uint8 and d["image"].shape[0] == 3
            assert min(d["image"].shape[1:]) == 20
            assert len(d["instances"]) >= 1
    seen = {d["image_id"] for b in batches for d in b}
    assert 4 not in seen  # the image without annotations was filtered


def test_train_loader_no_grouping_and_repeat_factor_sampler(registered):
    cfg = _cfg(
        registered,
        ASPECT_RATIO_GROUPING=False,
        SAMPLER_TRAIN="RepeatFactorTrainingSampler",
        REPEAT_THRESHOLD=0.5,
    )
    loader = build_detection_train_loader(cfg, total_batch_size=3)
    batch = next(iter(loader))
    assert len(batch) == 3
    cfg.DATALOADER.SAMPLER_TRAIN = "Magic"
    with pytest.raises(ValueError, match="SAMPLER_TRAIN='Magic'"):
        build_detection_train_loader(cfg)


def test_train_loader_explicit_style_and_skip_none(registered):
    dicts = DatasetCatalog.get(registered)

    def mapper(d):
        return None if d["image_id"] == 1 else {"image_id": d["image_id"], "width": 1, "height": 2}

    loader = build_detection_train_loader(
        dicts, mapper=mapper, total_batch_size=2, sampler=TrainingSampler(len(dicts), seed=0)
    )
    ids = [d["image_id"] for b in itertools.islice(loader, 5) for d in b]
    assert 1 not in ids and len(ids) == 10
    loader = build_detection_train_loader(
        dataset=dicts, mapper=mapper, total_batch_size=2, collate_fn=len
    )
    assert next(iter(loader)) == 2
    with pytest.raises(TypeError, match="total_batch_size"):
        build_detection_train_loader(dataset=dicts, mapper=mapper)
    with pytest.raises(ValueError, match="Total batch size"):
        build_detection_train_loader(dicts, mapper=mapper, total_batch_size=0)


def _course_mapper(dataset_dict):
    """The mapper of the course notebook, with the vertical flip forced."""
    dataset_dict = copy.deepcopy(dataset_dict)
    image = utils.read_image(dataset_dict["file_name"], format="BGR")
    transform_list = [
        T.RandomFlip(prob=1.0, horizontal=False, vertical=True),
        T.RandomBrightness(0.8, 1.8),
        T.RandomContrast(0.6, 1.3),
    ]
    image, transforms = T.apply_transform_gens(transform_list, image)
    dataset_dict["image"] = torch.as_tensor(image.transpose(2, 0, 1).astype("float32"))
    annos = [
        utils.transform_instance_annotations(obj, transforms, image.shape[:2])
        for obj in dataset_dict.pop("annotations")
        if obj.get("iscrowd", 0) == 0
    ]
    instances = utils.annotations_to_instances(annos, image.shape[:2])
    dataset_dict["instances"] = utils.filter_empty_instances(instances)
    return dataset_dict


def test_course_script_shape(registered):
    cfg = _cfg(registered)
    loader = build_detection_train_loader(cfg, mapper=_course_mapper)
    by_id = {}
    for batch in itertools.islice(loader, 6):
        assert len(batch) == 2
        for d in batch:
            by_id[d["image_id"]] = d
    assert set(by_id) == {1, 2, 3}
    d = by_id[1]
    assert d["image"].shape == (3, 30, 40)
    # image 1 is 30 high: red y 2..12 -> 18..28, green y 10..25 -> 5..20
    boxes = d["instances"].gt_boxes.tensor
    assert torch.allclose(boxes, torch.tensor([[5.0, 18, 15, 28], [20, 5, 35, 20]]))
    assert d["instances"].gt_classes.tolist() == [0, 1]
    img = d["image"]
    assert img[2, 23, 10] > img[0, 23, 10] + 50  # red (BGR channel 2) is now at the flipped spot
    assert img[2, 7, 10] == img[0, 7, 10]  # ...and gone from the original one
    assert img[1, 12, 27] > img[0, 12, 27] + 50  # green
    assert torch.allclose(
        by_id[2]["instances"].gt_boxes.tensor, torch.tensor([[4.0, 8, 12, 28]])
    )  # 32 high: y 4..24 -> 8..28


def test_train_loader_two_workers(registered):
    cfg = _cfg(registered, NUM_WORKERS=2, ASPECT_RATIO_GROUPING=False)
    dicts = get_detection_dataset_dicts(registered)
    sampler = TrainingSampler(len(dicts), seed=5)
    loader = build_detection_train_loader(
        cfg, sampler=sampler, total_batch_size=1, mapper=DatasetMapper(cfg, True)
    )
    ids = [b[0]["image_id"] for b in itertools.islice(loader, 6)]
    expected = [dicts[i]["image_id"] for i in itertools.islice(iter(sampler), 6)]
    assert ids == expected  # the two workers together follow the sampler's stream exactly
    del loader


def test_test_loader(registered):
    cfg = _cfg(registered)
    loader = build_detection_test_loader(cfg, registered)
    assert len(loader) == 4
    assert isinstance(loader.sampler, InferenceSampler)
    outputs = [batch for batch in loader]
    assert [b[0]["image_id"] for b in outputs] == [1, 2, 3, 4]
    assert all("instances" not in b[0] and b[0]["image"].dtype == torch.uint8 for b in outputs)
    assert outputs[0][0]["image"].shape == (3, 20, 27)
    explicit = build_detection_test_loader(
        dataset=DatasetCatalog.get(registered), mapper=lambda d: d["file_name"], batch_size=2
    )
    assert [len(b) for b in explicit] == [2, 2]
    positional = build_detection_test_loader(DatasetCatalog.get(registered), mapper=lambda d: 1)
    assert len(positional) == 4
    with pytest.raises(TypeError, match="dataset_name"):
        build_detection_test_loader(cfg)


def test_trivial_batch_collator():
    batch = [{"a": 1}, {"b": 2}]
    assert trivial_batch_collator(batch) is batch


def test_repeat_factor_sampler_type_from_cfg(registered):
    from d2lite.data.build import _train_sampler_from_config

    cfg = _cfg(registered, SAMPLER_TRAIN="RepeatFactorTrainingSampler", REPEAT_THRESHOLD=1.0)
    sampler = _train_sampler_from_config(cfg, get_detection_dataset_dicts(registered))
    assert isinstance(sampler, RepeatFactorTrainingSampler)
    assert np.isclose(sampler._int_part.sum() + sampler._frac_part.sum(), 3 * np.sqrt(1.5))


def test_worker_init_limits_threads_and_seeds():
    from d2lite.data.build import _seed_worker

    threads = torch.get_num_threads()
    try:
        _seed_worker(1, base_seed=10, rank=0)
        assert torch.get_num_threads() == 1
        a = np.random.rand()
        _seed_worker(1, base_seed=10, rank=0)
        assert np.random.rand() == a
        _seed_worker(1, base_seed=10, rank=1)
        assert np.random.rand() != a
        _seed_worker(2, base_seed=10, rank=0)
        assert np.random.rand() != a
    finally:
        torch.set_num_threads(threads)
        np.random.seed(None)


def _identity(x):
    return x


def test_batch_loader_for_inference_covers_the_dataset_once():
    from d2lite.data import DatasetFromList, build_batch_data_loader

    ds = DatasetFromList(list(range(11)))
    for workers in (0, 2):
        loader = build_batch_data_loader(ds, InferenceSampler(11), 4, num_workers=workers)
        batches = list(loader)
        assert len(batches) == len(loader) == 2  # the short last batch is dropped
        assert [x for b in batches for x in b] == list(range(8))  # in order, even with workers
    loader = build_batch_data_loader(ds, InferenceSampler(11), 4, drop_last=False)
    assert [len(b) for b in loader] == [4, 4, 3] and len(loader) == 3


def test_batch_loader_batch_size_arguments():
    from d2lite.data import DatasetFromList, build_batch_data_loader

    ds = DatasetFromList(list(range(6)))
    loader = build_batch_data_loader(ds, InferenceSampler(6), None, single_gpu_batch_size=3)
    assert [len(b) for b in loader] == [3, 3]
    with pytest.raises(ValueError, match="not both"):
        build_batch_data_loader(ds, InferenceSampler(6), 2, single_gpu_batch_size=3)
    with pytest.raises(AssertionError, match="drop_last"):
        build_batch_data_loader(
            ds, InferenceSampler(6), 2, aspect_ratio_grouping=True, drop_last=False
        )


class _Ones(torch.utils.data.IterableDataset):
    def __iter__(self):
        while True:
            yield {"width": 2, "height": 1}


def test_iterable_dataset_from_cfg_trains_and_tests():
    DatasetCatalog.register("build_iter", _Ones)
    cfg = _cfg("build_iter")
    loader = build_detection_train_loader(cfg, mapper=_identity)
    assert next(iter(loader)) == [{"width": 2, "height": 1}] * 2
    test_loader = build_detection_test_loader(cfg, "build_iter", mapper=_identity)
    assert not isinstance(test_loader.sampler, InferenceSampler)  # no sampler of ours
    assert next(iter(test_loader)) == [{"width": 2, "height": 1}]
    with pytest.raises(AssertionError, match="sampler must be None"):
        build_detection_train_loader(
            _Ones(), mapper=None, sampler=TrainingSampler(1), total_batch_size=1
        )


def test_samplers_named_by_the_config(registered):
    from d2lite.data.build import _train_sampler_from_config
    from d2lite.data.samplers import RandomSubsetTrainingSampler

    dicts = get_detection_dataset_dicts(registered)
    cfg = _cfg(registered, SAMPLER_TRAIN="RandomSubsetTrainingSampler")
    with pytest.raises(ValueError, match="DATALOADER.RANDOM_SUBSET_RATIO"):
        _train_sampler_from_config(cfg, dicts)
    cfg.DATALOADER.RANDOM_SUBSET_RATIO = 0.7
    sampler = _train_sampler_from_config(cfg, dicts)
    assert isinstance(sampler, RandomSubsetTrainingSampler)
    assert len(set(itertools.islice(sampler, 20))) == 2  # int(3 * 0.7) images
    cfg = _cfg(registered)
    cfg.SEED = 123
    assert _train_sampler_from_config(cfg, dicts).seed == 123  # Detectron2 passes cfg.SEED


def test_weighted_samplers_repeat_datasets(coco_dir):
    from d2lite.data.build import _train_sampler_from_config

    json_file, root = coco_dir
    register_coco_instances("build_w1", {}, str(json_file), str(root))
    register_coco_instances("build_w2", {}, str(json_file), str(root))
    cfg = _cfg("build_w1", SAMPLER_TRAIN="WeightedTrainingSampler")
    cfg.DATASETS.TRAIN = ("build_w1", "build_w2")
    with pytest.raises(ValueError, match="TRAIN_REPEAT_FACTOR"):
        _train_sampler_from_config(cfg, [])
    cfg.DATASETS.TRAIN_REPEAT_FACTOR = [["build_w2", 3.0]]
    sampler = _train_sampler_from_config(cfg, [])
    assert (sampler._int_part + sampler._frac_part).tolist() == [1.0] * 3 + [3.0] * 3
    cfg.DATALOADER.SAMPLER_TRAIN = "WeightedCategoryTrainingSampler"
    cfg.DATALOADER.REPEAT_THRESHOLD = 1.0
    factors = _train_sampler_from_config(cfg, [])._int_part
    assert factors.min() >= 1 and len(factors) == 6


def test_test_loader_cfg_form_takes_overrides(registered):
    cfg = _cfg(registered)
    loader = build_detection_test_loader(cfg, registered, batch_size=3, collate_fn=len)
    assert list(loader) == [3, 1]
    named = build_detection_test_loader(cfg, dataset_name=registered, mapper=_identity)
    assert [b[0]["image_id"] for b in named] == [1, 2, 3, 4]


def _augmented(idx):
    """Landscape or portrait by index, with a random draw standing for augmentation."""
    return {"idx": idx, "draw": float(np.random.rand()), "width": 2 + idx % 3, "height": 3}


@pytest.mark.parametrize("grouping", [True, False], ids=["grouped", "plain"])
def test_batch_loader_resumes_its_stream_with_and_without_workers(grouping):
    from d2lite.data import DatasetFromList, MapDataset, build_batch_data_loader

    def loader(num_workers, sampler_seed=7):
        ds = MapDataset(DatasetFromList(list(range(5))), _augmented)
        sampler = TrainingSampler(5, seed=sampler_seed)
        return build_batch_data_loader(
            ds, sampler, 2, aspect_ratio_grouping=grouping, num_workers=num_workers
        )

    first = loader(0)
    batches = iter(first)
    taken = [next(batches) for _ in range(3)]
    state = first.state_dict()
    assert bool(state["replay"]) == grouping  # grouping holds an image back here
    continued = [next(batches) for _ in range(4)]
    for num_workers in (0, 2):
        assert list(itertools.islice(loader(num_workers), 3)) == taken
        resumed = loader(num_workers, sampler_seed=8)  # the state carries the seeds
        resumed.load_state_dict(state)
        assert list(itertools.islice(resumed, 4)) == continued
        del resumed


def test_batch_loader_for_inference_stays_a_plain_data_loader():
    from d2lite.data import DatasetFromList, build_batch_data_loader

    loader = build_batch_data_loader(DatasetFromList([1, 2]), InferenceSampler(2), 2)
    assert type(loader) is torch.utils.data.DataLoader


def test_fewer_model_classes_than_the_dataset_has_is_an_error_before_training(registered):
    cfg = _cfg(registered)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 1
    with pytest.raises(ValueError, match=r"NUM_CLASSES=1 .* 2 thing_classes of .*'build_train'"):
        build_detection_train_loader(cfg)


def test_more_model_classes_than_the_dataset_has_warns_once(registered, caplog):
    cfg = _cfg(registered)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 5
    with caplog.at_level(logging.WARNING):
        build_detection_train_loader(cfg)
        build_detection_train_loader(cfg)
    warnings = [r for r in caplog.records if "NUM_CLASSES=5" in r.getMessage()]
    assert len(warnings) == 1 and "2 thing_classes of dataset 'build_train'" in warnings[0].msg


def test_a_category_id_the_model_cannot_predict_is_an_error_naming_the_annotation():
    dicts = [
        {"file_name": "a.jpg", "image_id": 1, "height": 8, "width": 8, "annotations": [
            {"id": 7, "bbox": [0, 0, 4, 4], "bbox_mode": 0, "category_id": 2, "iscrowd": 0},
        ]},
    ]  # fmt: skip
    DatasetCatalog.register("build_no_metadata", lambda: dicts)
    cfg = _cfg("build_no_metadata")
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 2
    with pytest.raises(ValueError, match=r"annotation 7 of a\.jpg .*category_id 2.*NUM_CLASSES=2"):
        build_detection_train_loader(cfg)
    cfg.MODEL.META_ARCHITECTURE = "ProposalNetwork"  # no classifier: any id trains
    build_detection_train_loader(cfg)
