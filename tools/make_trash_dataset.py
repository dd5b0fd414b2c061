#!/usr/bin/env python
"""Write the synthetic trash dataset (COCO format, 10 classes) for demos and tests.

Example: ``python tools/make_trash_dataset.py datasets/trash --train 300 --val 60 --test 40``
"""
from __future__ import annotations

import sys

from d2lite.data.datasets.synthetic import main

if __name__ == "__main__":
    main(sys.argv[1:])
