#!/usr/bin/env python
"""Trains or evaluates a detector from a config file, as Detectron2's ``tools/train_net.py``.

Examples (on a small synthetic trash dataset, written by the first line)::

    python tools/make_trash_dataset.py output/trash_small --train 60 --val 20 --test 10 --size 64
    python tools/train_net.py --config-file model_zoo/tiny/faster_rcnn_tiny_trash.yaml \\
        --dataset train=output/trash_small/train.json --dataset val=output/trash_small/val.json \\
        SOLVER.MAX_ITER 20 OUTPUT_DIR output/tiny
    python tools/train_net.py --config-file output/tiny/config.yaml --eval-only \\
        MODEL.WEIGHTS output/tiny/model_final.pth
    python tools/train_net.py --config-file cfg.yaml --num-gpus 2   # two processes (GPUs or CPU)

``--dataset NAME=JSON_FILE[:IMAGE_ROOT]`` registers any COCO dataset (``train`` trains, other
names are evaluated); without it, the configs name registered datasets (the tiny trash config's
``coco_trash_train``, unless a script registered it, is registered for the data ``make demo``
writes to ``$D2LITE_DATASETS/trash``, default ``datasets/trash``).

The code is ``d2lite.cli.train_net`` (``d2lite train`` / ``d2lite eval`` run it too); this
script keeps the Detectron2 habit and its names (``Trainer``, ``setup``, ``main``).
"""

import os
import sys

# Runs from a source checkout without installing d2lite.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from d2lite.cli.train_net import Trainer, get_parser, invoke_main, main, setup  # noqa: E402

__all__ = ["Trainer", "get_parser", "invoke_main", "main", "setup"]

if __name__ == "__main__":
    invoke_main()
