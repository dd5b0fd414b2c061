#!/usr/bin/env python
"""Check a COCO-format detection dataset before training on it.

Examples::

    python tools/check_dataset.py datasets/trash/train.json datasets/trash
    python tools/check_dataset.py --dataset coco_trash_train

The exit code is 1 when there are errors. The code is ``d2lite.cli.check_dataset``
(``d2lite check``).
"""

import os
import sys

# Runs from a source checkout without installing d2lite.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from d2lite.cli.check_dataset import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
