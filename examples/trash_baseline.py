#!/usr/bin/env python
"""The recycling-trash course baseline, as a Detectron2 user writes it (only the import prefix
differs): register the COCO files, train Faster R-CNN with a custom mapper and evaluator, then
predict the test images into the submission CSV.

Defaults are the course's (R101-FPN from COCO weights, 15000 iterations). For a quick run::

    python examples/trash_baseline.py --data-dir datasets/trash --output-dir output/baseline \\
        --config-file model_zoo/tiny/faster_rcnn_tiny.yaml --weights "" --max-iter 20
"""
import argparse
import copy
import csv
import os

import torch
from tqdm import tqdm

import d2lite.data.transforms as T
from d2lite import model_zoo
from d2lite.config import get_cfg
from d2lite.data import (
    DatasetCatalog,
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
)
from d2lite.data import detection_utils as utils
from d2lite.data.datasets import register_coco_instances
from d2lite.engine import DefaultPredictor, DefaultTrainer
from d2lite.evaluation import COCOEvaluator
from d2lite.utils.logger import setup_logger

CLASSES = ["General trash", "Paper", "Paper pack", "Metal", "Glass",
           "Plastic", "Styrofoam", "Plastic bag", "Battery", "Clothing"]  # fmt: skip
BASE_CONFIG = "COCO-Detection/faster_rcnn_R_101_FPN_3x.yaml"

parser = argparse.ArgumentParser(description="Trash detection baseline")
parser.add_argument("--data-dir", default="../../dataset", help="has train/val/test.json + images")
parser.add_argument("--output-dir", default="./output")
parser.add_argument("--config-file", default=model_zoo.get_config_file(BASE_CONFIG))
parser.add_argument("--weights", default=model_zoo.get_checkpoint_url(BASE_CONFIG))
parser.add_argument("--max-iter", type=int, default=15000)
parser.add_argument("--num-workers", type=int, default=2)
args = parser.parse_args()

setup_logger()

# Register the datasets; a name registered earlier in this process (a notebook re-run with
# another --data-dir) is replaced, since register_coco_instances refuses other files.
for split in ("train", "val", "test"):
    name = f"coco_trash_{split}"
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    json_file = os.path.join(args.data_dir, f"{split}.json")
    register_coco_instances(name, {}, json_file, args.data_dir)
    MetadataCatalog.get(name).thing_classes = CLASSES

# Config.
cfg = get_cfg()
cfg.merge_from_file(args.config_file)
cfg.DATASETS.TRAIN = ("coco_trash_train",)
cfg.DATASETS.TEST = ("coco_trash_val",)
cfg.DATALOADER.NUM_WORKERS = args.num_workers
cfg.MODEL.WEIGHTS = args.weights
cfg.MODEL.DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
cfg.SOLVER.IMS_PER_BATCH = 4
cfg.SOLVER.BASE_LR = 0.001
cfg.SOLVER.MAX_ITER = args.max_iter
cfg.SOLVER.STEPS = (int(args.max_iter * 0.53), int(args.max_iter * 0.8))
cfg.SOLVER.GAMMA = 0.005
cfg.SOLVER.WARMUP_ITERS = min(1000, args.max_iter // 2)
cfg.SOLVER.CHECKPOINT_PERIOD = 3000
cfg.OUTPUT_DIR = args.output_dir
cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 128
cfg.MODEL.ROI_HEADS.NUM_CLASSES = 10
cfg.TEST.EVAL_PERIOD = 3000


def MyMapper(dataset_dict):
    """Reads the image, augments it, and transforms the boxes to match."""
    dataset_dict = copy.deepcopy(dataset_dict)
    image = utils.read_image(dataset_dict["file_name"], format="BGR")
    transform_list = [
        T.RandomFlip(prob=0.5, horizontal=False, vertical=True),
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


class MyTrainer(DefaultTrainer):
    @classmethod
    def build_train_loader(cls, cfg, sampler=None):
        return build_detection_train_loader(cfg, mapper=MyMapper, sampler=sampler)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "output_eval")
            os.makedirs(output_folder, exist_ok=True)
        return COCOEvaluator(dataset_name, cfg, False, output_folder)


# Train (and evaluate on the val split at the end).
os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
trainer = MyTrainer(cfg)
trainer.resume_or_load(resume=False)
trainer.train()

# Inference on the test split.
cfg.MODEL.WEIGHTS = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.05
predictor = DefaultPredictor(cfg)


def TestMapper(dataset_dict):
    dataset_dict = copy.deepcopy(dataset_dict)
    dataset_dict["image"] = utils.read_image(dataset_dict["file_name"], format="BGR")
    return dataset_dict


test_loader = build_detection_test_loader(cfg, "coco_trash_test", TestMapper)
prediction_strings, file_names = [], []
for data in tqdm(test_loader):
    data = data[0]
    outputs = predictor(data["image"])["instances"]
    targets = outputs.pred_classes.cpu().tolist()
    boxes = [box.cpu().numpy() for box in outputs.pred_boxes]
    scores = outputs.scores.cpu().tolist()
    prediction_string = ""
    for target, box, score in zip(targets, boxes, scores):
        prediction_string += f"{target} {score} {box[0]} {box[1]} {box[2]} {box[3]} "
    prediction_strings.append(prediction_string)
    file_names.append(os.path.relpath(data["file_name"], args.data_dir))

submission_path = os.path.join(cfg.OUTPUT_DIR, "submission_det.csv")
with open(submission_path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["PredictionString", "image_id"])
    writer.writerows(zip(prediction_strings, file_names))
print(f"Submission written to {submission_path}")
