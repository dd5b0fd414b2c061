"""``d2lite visualize``: draw the training data's ground truth, as annotated or as the model
sees it.

Examples::

    d2lite visualize --config-file C.yaml --source annotation --output out/gt
    d2lite visualize --config-file C.yaml --dataset train=data/train.json --source annotation \\
        --output out/gt
    d2lite visualize --config-file C.yaml --source dataloader --output out/aug \\
        --num 16 DATALOADER.NUM_WORKERS 0

``annotation`` draws the boxes of the dataset dicts of ``DATASETS.TRAIN`` on the original
images. ``dataloader`` draws what the training loader yields: images after the mapper's
resizing and augmentation (converted from ``INPUT.FORMAT`` to RGB) with their transformed boxes,
the best way to check that augmentations keep boxes on their objects.

Pictures are named after the images' file names, inside ``--output``: one whose path leads
outside through a symlink is refused (``d2lite.utils.file_io.safe_output_path``).
"""
from __future__ import annotations

import argparse
import itertools
import logging
import os
from typing import Iterator

import numpy as np

from d2lite.data import DatasetCatalog, MetadataCatalog, build_detection_train_loader
from d2lite.data.detection_utils import read_image
from d2lite.structures import BoxMode
from d2lite.utils.file_io import atomic_output, safe_output_path
from d2lite.utils.visualizer import Visualizer

from .common import add_dataset_argument, ensure_logger, load_config

__all__ = ["get_parser", "to_rgb", "main"]

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """The arguments of ``d2lite visualize``."""
    parser = argparse.ArgumentParser(
        description="Draw the ground truth of the training datasets, as annotated or as the "
        "model sees it (after the mapper's resizing and augmentation)."
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="config file")
    parser.add_argument(
        "--source", choices=["annotation", "dataloader"], required=True, help="what to draw"
    )
    parser.add_argument("--output", "--output-dir", dest="output", required=True, help="directory")
    parser.add_argument("--num", type=int, default=20, help="number of images to draw")
    parser.add_argument("--scale", type=float, default=1.0, help="output size factor")
    add_dataset_argument(parser)
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides: KEY VALUE pairs"
    )
    return parser


def to_rgb(image_chw: np.ndarray, input_format: str) -> np.ndarray:
    """A mapper's ``image`` (C, H, W in ``input_format``) as an (H, W, 3) uint8 RGB array."""
    img = np.asarray(image_chw).transpose(1, 2, 0)
    if input_format == "BGR":
        img = img[:, :, ::-1]
    elif input_format == "L":
        img = np.repeat(img[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))


def _from_annotations(cfg, metadata, scale: float) -> Iterator[tuple[str, Visualizer]]:
    dicts = itertools.chain.from_iterable(DatasetCatalog.get(n) for n in cfg.DATASETS.TRAIN)
    for dic in dicts:
        vis = Visualizer(read_image(dic["file_name"], format="RGB"), metadata, scale=scale)
        vis.draw_dataset_dict(dic)
        yield dic["file_name"], vis


def _from_dataloader(cfg, metadata, scale: float) -> Iterator[tuple[str, Visualizer]]:
    for batch in build_detection_train_loader(cfg):
        for per_image in batch:
            img = to_rgb(per_image["image"].cpu().numpy(), cfg.INPUT.FORMAT)
            vis = Visualizer(img, metadata, scale=scale)
            target = per_image["instances"]
            # As dataset-dict annotations, the boxes get the same class colours and names.
            annos = [
                {"bbox": box.tolist(), "bbox_mode": BoxMode.XYXY_ABS, "category_id": int(c)}
                for box, c in zip(target.gt_boxes.tensor, target.gt_classes)
            ]
            vis.draw_dataset_dict({"annotations": annos})
            yield per_image["file_name"], vis


def main(argv: list[str] | None = None) -> list[str]:
    """Runs the tool; returns the paths of the pictures written."""
    args = get_parser().parse_args(argv)
    ensure_logger()
    cfg = load_config(args.config_file, args.opts, args.dataset)
    if not cfg.DATASETS.TRAIN:
        raise ValueError(f"{args.config_file}: DATASETS.TRAIN is empty, nothing to draw")
    os.makedirs(args.output, exist_ok=True)
    metadata = MetadataCatalog.get(cfg.DATASETS.TRAIN[0])
    source = _from_annotations if args.source == "annotation" else _from_dataloader
    written: list[str] = []
    for file_name, vis in itertools.islice(source(cfg, metadata, args.scale), args.num):
        stem = os.path.splitext(os.path.basename(file_name))[0]
        # The loader repeats images (infinite sampler); number repeats instead of overwriting.
        path = safe_output_path(args.output, f"{stem}.png", source=file_name)
        if path in written:
            path = safe_output_path(args.output, f"{stem}_{len(written)}.png", source=file_name)
        with atomic_output(path) as tmp:
            vis.get_output().save(tmp)
        written.append(path)
    logger.info(f"Wrote {len(written)} pictures to {args.output}")
    return written


if __name__ == "__main__":
    main()
