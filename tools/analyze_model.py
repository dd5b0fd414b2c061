#!/usr/bin/env python
"""Report a model's parameters, FLOPs, activations or structure (through fvcore).

Examples::

    python tools/analyze_model.py --config-file C.yaml --tasks parameter
    python tools/analyze_model.py --config-file C.yaml --tasks flop --num-inputs 10 MODEL.DEVICE cpu

The code is ``d2lite.cli.analyze_model`` (``d2lite analyze``).
"""

import os
import sys

# Runs from a source checkout without installing d2lite.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from d2lite.cli.analyze_model import get_parser, main  # noqa: E402

__all__ = ["get_parser", "main"]

if __name__ == "__main__":
    main()
