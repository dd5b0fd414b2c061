#!/usr/bin/env python
"""Run a trained detector on images: annotated pictures and a submission CSV.

Examples::

    python tools/predict.py --config-file output/tiny/config.yaml \\
        --input output/trash_small/test --output output/tiny/pred \\
        MODEL.WEIGHTS output/tiny/model_final.pth
    python tools/predict.py --config-file C.yaml --input datasets/trash/test.json \\
        --output out/pred --csv out/submission.csv MODEL.WEIGHTS output/model_final.pth

The code, and what the arguments mean, is ``d2lite.cli.predict`` (``d2lite predict``).
"""

import os
import sys

# Runs from a source checkout without installing d2lite.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from d2lite.cli.predict import (  # noqa: E402
    collect_images,
    get_parser,
    main,
    picture_paths,
    prediction_string,
    setup_cfg,
    write_csv,
)

__all__ = [
    "collect_images",
    "get_parser",
    "main",
    "picture_paths",
    "prediction_string",
    "setup_cfg",
    "write_csv",
]

if __name__ == "__main__":
    main()
