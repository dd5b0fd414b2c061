"""``d2lite check``: check a COCO-format detection dataset before training on it.

Examples::

    d2lite check datasets/trash/train.json datasets/trash
    d2lite check --dataset coco_trash_train
    d2lite check --dataset train=datasets/trash/train.json   # the --dataset form of d2lite train

Prints errors and warnings (with the ids at fault), the class histogram and the box-size
distribution. Every image is read as training reads it (fully decoded, EXIF orientation applied),
so one that passes here loads there. The exit code is 1 when there are errors, 0 otherwise.
"""
from __future__ import annotations

import argparse
import sys

from d2lite.data import DatasetCatalog, MetadataCatalog
from d2lite.data.datasets import parse_dataset_arg
from d2lite.extras.check_dataset import CheckReport, check_coco_json, check_dataset_dicts
from d2lite.extras.trash import register_trash_datasets

__all__ = ["main"]


def _check_registered(name: str, check_images: bool) -> CheckReport:
    register_trash_datasets([name])  # coco_trash_* name the data `make demo` writes
    dicts = DatasetCatalog.get(name)
    metadata = MetadataCatalog.get(name)
    classes = metadata.get("thing_classes", None)
    # register_coco_instances records image_root; the file names should stay inside it.
    image_root = metadata.get("image_root", None)
    report = check_dataset_dicts(dicts, classes, check_images=check_images, image_root=image_root)
    report.info.insert(0, f"Dataset: {name} (registered)")
    return report


def main(argv: list[str] | None = None) -> int:
    """Runs the check; returns the exit code (1 when there are errors)."""
    parser = argparse.ArgumentParser(
        description="Check a COCO-format detection dataset before training on it: ids, "
        "categories, boxes, image files and sizes. Exit code 1 when there are errors."
    )
    parser.add_argument("json_file", nargs="?", help="COCO instances JSON file")
    parser.add_argument("image_root", nargs="?", help="directory the file_name entries are in")
    parser.add_argument(
        "--dataset",
        metavar="NAME | NAME=JSON_FILE[:IMAGE_ROOT]",
        help="check a registered dataset, or a JSON file given as d2lite train's --dataset",
    )
    parser.add_argument("--no-images", action="store_true", help="do not open the image files")
    parser.add_argument("--max-list", type=int, default=20, help="ids listed per kind of issue")
    args = parser.parse_args(argv)
    if args.dataset and "=" in args.dataset:
        _, json_file, image_root = parse_dataset_arg(args.dataset)
        report = check_coco_json(json_file, image_root, check_images=not args.no_images)
    elif args.dataset:
        report = _check_registered(args.dataset, not args.no_images)
    elif args.json_file and args.image_root:
        report = check_coco_json(args.json_file, args.image_root, check_images=not args.no_images)
    else:
        parser.error("give JSON_FILE IMAGE_ROOT, or --dataset NAME")
    print(report.format(max_per_kind=args.max_list))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
