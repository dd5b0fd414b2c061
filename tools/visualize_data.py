#!/usr/bin/env python
"""Draw the ground truth of the training datasets, as annotated or as the model sees it.

Examples::

    python tools/visualize_data.py --config-file C.yaml --source annotation --output out/gt
    python tools/visualize_data.py --config-file C.yaml --source dataloader --output out/aug \\
        --num 16 DATALOADER.NUM_WORKERS 0

The code is ``d2lite.cli.visualize_data`` (``d2lite visualize``).
"""

import os
import sys

# Runs from a source checkout without installing d2lite.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from d2lite.cli.visualize_data import get_parser, main, to_rgb  # noqa: E402

__all__ = ["get_parser", "main", "to_rgb"]

if __name__ == "__main__":
    main()
