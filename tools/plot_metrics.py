#!/usr/bin/env python
"""Draw a training run's losses, learning rate and AP from its metrics.json into a PNG.

Examples::

    python tools/plot_metrics.py output/trash_demo  # writes output/trash_demo/training_curves.png
    python tools/plot_metrics.py output/run/metrics.json --out curves.png

Training already draws ``OUTPUT_DIR/training_curves.png`` when it ends; this redraws it from
any run, also one still going or one that was killed. The code is
``d2lite.extras.plot_metrics``.
"""
from __future__ import annotations

from d2lite.extras.plot_metrics import main

if __name__ == "__main__":
    main()
