#!/usr/bin/env python
"""Benchmark d2lite's training, inference and data loading, optionally beside torchvision's.

Examples::

    python tools/benchmark.py --config-file model_zoo/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml \\
        --task train --size 512 --batch 2 --compare torchvision MODEL.ROI_HEADS.NUM_CLASSES 10

The code, and how each figure is measured, is ``d2lite.cli.benchmark`` (``d2lite benchmark``).
"""

import os
import sys

# Runs from a source checkout without installing d2lite.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# _image_size: tests/tools/test_benchmark.py checks it through this script.
from d2lite.cli.benchmark import _image_size, main, parse_args  # noqa: E402,F401

__all__ = ["main", "parse_args"]

if __name__ == "__main__":
    main(sys.argv[1:])
