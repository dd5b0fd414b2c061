#!/usr/bin/env python
"""Write the synthetic trash dataset (COCO format, 10 classes) for demos and tests.

Example: ``python tools/make_trash_dataset.py datasets/trash --train 300 --val 60 --test 40``
(``d2lite make-trash`` runs the same code, ``d2lite.extras.synthetic``).
"""

import os
import sys

# Runs from a source checkout without installing d2lite.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from d2lite.extras.synthetic import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
