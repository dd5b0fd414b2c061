#!/usr/bin/env python
"""Trains a detector with an explicit loop instead of ``DefaultTrainer`` and hooks.

Everything the hooks do (LR schedule, checkpoints, metric writers, periodic evaluation) is
written out in ``d2lite/cli/plain_train_net.py``'s ``do_train``: the place to start when the
training loop itself must change. It takes the arguments of ``tools/train_net.py``::

    python tools/make_trash_dataset.py output/trash_small --train 60 --val 20 --test 10 --size 64
    python tools/plain_train_net.py --config-file model_zoo/tiny/faster_rcnn_tiny_trash.yaml \\
        --dataset train=output/trash_small/train.json --dataset val=output/trash_small/val.json \\
        SOLVER.MAX_ITER 20 OUTPUT_DIR output/plain_tiny
"""

import os
import sys

# Runs from a source checkout without installing d2lite.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from d2lite.cli.plain_train_net import (  # noqa: E402
    do_test,
    do_train,
    get_evaluator,
    get_parser,
    invoke_main,
    main,
    setup,
)

__all__ = ["do_test", "do_train", "get_evaluator", "get_parser", "invoke_main", "main", "setup"]

if __name__ == "__main__":
    invoke_main()
