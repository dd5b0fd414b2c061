"""``d2lite predict``: run a trained detector on images, writing annotated pictures and a CSV.

Examples::

    d2lite predict --config-file out/config.yaml --input datasets/trash/test --output out/pred \\
        MODEL.WEIGHTS out/model_final.pth
    d2lite predict --config-file C.yaml --input datasets/trash/test.json \\
        --output out/pred --csv out/submission.csv MODEL.WEIGHTS out/model_final.pth

``--input`` takes image files, directories (their images, not recursive), glob patterns, or a
COCO JSON file (its images, found next to the JSON). The CSV has the course's columns
``PredictionString,image_id``: ``PredictionString`` holds ``label score xmin ymin xmax ymax`` for
every detection, space-separated; ``image_id`` is the JSON's ``file_name`` for JSON input,
else the image path relative to ``--image-root`` (default: the parent of the image's folder, so
``datasets/trash/test/0000.jpg`` becomes ``test/0000.jpg``). The CSV keeps every detection the
model returns (``MODEL.ROI_HEADS.SCORE_THRESH_TEST``, what mAP wants); the pictures show only
those scoring at least ``--confidence-threshold``.

The pictures mirror the image ids under ``--output`` and never leave it: an id climbing out
(``../x.jpg``, ``/abs/x.jpg``) keeps only the part inside, with a warning, and a symlink that
leads outside is refused before the model runs (``d2lite.utils.file_io.safe_output_path``).
The CSV is written atomically: a failed run leaves the previous CSV, never a partial one.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import logging
import os
import sys

import numpy as np

from d2lite.data import MetadataCatalog
from d2lite.data.detection_utils import read_image
from d2lite.engine import DefaultPredictor
from d2lite.utils.file_io import atomic_output, safe_output_path
from d2lite.utils.visualizer import Visualizer

from .common import add_dataset_argument, ensure_logger, load_config

__all__ = [
    "get_parser",
    "collect_images",
    "prediction_string",
    "setup_cfg",
    "picture_paths",
    "write_csv",
    "main",
]

logger = logging.getLogger(__name__)

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def get_parser() -> argparse.ArgumentParser:
    """The arguments of ``d2lite predict``."""
    parser = argparse.ArgumentParser(
        description="Run a trained detector on images: annotated pictures and a submission CSV."
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="config file")
    parser.add_argument(
        "--input", nargs="+", required=True, help="image files, directories, globs or a COCO JSON"
    )
    parser.add_argument("--output", required=True, help="directory for the annotated images")
    parser.add_argument("--csv", help="submission CSV path. Defaults to OUTPUT/submission.csv")
    parser.add_argument("--image-root", help="image_id is the path relative to this directory")
    parser.add_argument(
        "--confidence-threshold", type=float, default=0.5, help="minimum score drawn on pictures"
    )
    # Class names for the pictures come from DATASETS.TEST[0]'s metadata.
    add_dataset_argument(parser)
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides: KEY VALUE pairs"
    )
    return parser


def _json_images(path: str) -> list[tuple[str, str]]:
    with open(path) as f:
        data = json.load(f)
    root = os.path.dirname(path)
    try:
        return [(os.path.join(root, im["file_name"]), im["file_name"]) for im in data["images"]]
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a COCO file with images[].file_name: {e!r}") from e


def collect_images(inputs: list[str], image_root: str | None) -> list[tuple[str, str]]:
    """Expands ``--input`` into ``(path, image_id)`` pairs, in a stable order.

    Raises:
        FileNotFoundError: if an input matches nothing or no image is found at all.
    """
    found: list[tuple[str, str]] = []
    for item in inputs:
        if item.endswith(".json") and os.path.isfile(item):
            found += _json_images(item)
            continue
        if os.path.isdir(item):
            names = sorted(os.listdir(item))
            paths = [os.path.join(item, n) for n in names if n.lower().endswith(_IMAGE_EXTENSIONS)]
        elif os.path.isfile(item):
            paths = [item]
        else:
            paths = sorted(glob.glob(item))
            if not paths:
                raise FileNotFoundError(f"--input {item!r} is no file, directory or matching glob")
        for path in paths:
            root = image_root or os.path.dirname(os.path.dirname(os.path.abspath(path)))
            found.append((path, os.path.relpath(os.path.abspath(path), os.path.abspath(root))))
    if not found:
        raise FileNotFoundError(f"No images found in --input {inputs}")
    return found


def prediction_string(instances) -> str:
    """``"label score xmin ymin xmax ymax ..."`` for every detection in ``instances``."""
    boxes = instances.pred_boxes.tensor.cpu().numpy()
    scores = instances.scores.cpu().numpy()
    classes = instances.pred_classes.cpu().numpy()
    parts = []
    for cls, score, box in zip(classes, scores, boxes):
        coords = " ".join(f"{v:.2f}" for v in box)
        parts.append(f"{int(cls)} {float(score):.4f} {coords}")
    return " ".join(parts)


def _progress(items: list, desc: str):
    # A bar for people at a terminal; plain periodic log lines in files and CI logs.
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(items, desc=desc)
        return
    step = max(1, len(items) // 10)
    for i, item in enumerate(items):
        if i % step == 0 or i == len(items) - 1:
            logger.info(f"{desc}: {i + 1}/{len(items)}")
        yield item


def setup_cfg(args: argparse.Namespace):
    """The frozen config; its datasets are registered only for their class names, so missing
    files (a config.yaml from another machine) are only a warning."""
    return load_config(args.config_file, args.opts, args.dataset, missing_data_ok=True)


def picture_paths(
    output_dir: str, images: list[tuple[str, str]], reserved: tuple[str, ...] = ()
) -> list[str]:
    """Where each image's annotated picture goes: ``output_dir/<image_id>``, confined to it.

    A path already taken (a duplicate id, two ids confined to the same name, a ``reserved``
    path such as the CSV) gets a ``_1``, ``_2``, ... suffix, with a warning, so that no picture
    overwrites another.

    Args:
        output_dir (str): the ``--output`` folder.
        images (list[tuple[str, str]]): ``(path, image_id)`` pairs from ``collect_images``.
        reserved (tuple[str, ...]): paths the pictures must not take. Defaults to ().

    Raises:
        ValueError: if an id leads outside ``output_dir`` through a symlink, naming the id.
    """
    taken = {os.path.abspath(p) for p in reserved}
    paths = []
    for path, image_id in images:
        out = first = safe_output_path(output_dir, image_id, source=path)
        stem, ext = os.path.splitext(os.path.relpath(first, output_dir))
        k = 0
        while os.path.abspath(out) in taken:
            k += 1
            out = safe_output_path(output_dir, f"{stem}_{k}{ext}", source=path)
        if k:
            logger.warning(f"{image_id!r} ({path}): {first} is taken; drawing it to {out}")
        taken.add(os.path.abspath(out))
        paths.append(out)
    return paths


def write_csv(path: str, rows: list[tuple[str, str]]) -> None:
    """Writes the submission atomically: readers see the previous file or the complete one."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["PredictionString", "image_id"])
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> str:
    """Runs the tool; returns the path of the CSV written."""
    args = get_parser().parse_args(argv)
    ensure_logger()
    cfg = setup_cfg(args)
    images = collect_images(args.input, args.image_root)
    # --csv is the user's own choice; only the default, a fixed name, is checked like the ids.
    csv_path = args.csv or safe_output_path(args.output, "submission.csv")
    # Every output path is checked before the model is built, so a bad name costs no time.
    out_paths = picture_paths(args.output, images, reserved=(csv_path,))
    predictor = DefaultPredictor(cfg)
    metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0]) if len(cfg.DATASETS.TEST) else None
    rows = []
    for (path, image_id), out_path in zip(_progress(images, "predict"), out_paths):
        image_bgr = read_image(path, format="BGR")
        instances = predictor(image_bgr)["instances"].to("cpu")
        rows.append((prediction_string(instances), image_id))
        shown = instances[instances.scores >= args.confidence_threshold]
        vis = Visualizer(np.ascontiguousarray(image_bgr[:, :, ::-1]), metadata)
        with atomic_output(out_path) as tmp:
            vis.draw_instance_predictions(shown).save(tmp)
    write_csv(csv_path, rows)
    logger.info(f"Wrote {len(rows)} annotated images to {args.output} and the CSV {csv_path}")
    return csv_path


if __name__ == "__main__":
    main()
