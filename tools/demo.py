#!/usr/bin/env python
"""`make demo`: train a detector from scratch on synthetic trash data, on a CPU, in minutes.

It writes the synthetic trash dataset to ``$D2LITE_DATASETS/trash`` (default
``datasets/trash``) unless it is there, trains and evaluates
``model_zoo/Trash-Demo/faster_rcnn_R_18_FPN_trash_cpu.yaml``, draws predictions and writes a
submission CSV. Extra ``KEY VALUE`` arguments override the config, e.g.
``SOLVER.MAX_ITER 100``. The code is ``d2lite.cli.demo``.
"""

import os
import sys

# Runs from a source checkout without installing d2lite.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from d2lite.cli.demo import ensure_dataset, get_parser, main, output_paths  # noqa: E402

__all__ = ["ensure_dataset", "get_parser", "main", "output_paths"]

if __name__ == "__main__":
    main()
