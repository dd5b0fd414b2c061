"""Product extras around the core library, used by the ``d2lite`` commands, ``tools/`` and the demo.

- ``trash``: the trash datasets' class names and ``register_trash_datasets`` (nothing is
  registered at import: the commands call it when a config names ``coco_trash_*``);
- ``synthetic``: writes the synthetic trash dataset (``d2lite make-trash``);
- ``check_dataset``: the dataset checker behind ``d2lite check``;
- ``plots`` and ``reports``: the confusion matrix, PR curves and per-class table that
  ``build_coco_evaluator``'s evaluator writes next to COCOEvaluator's metrics;
- ``plot_metrics``: training curves from ``metrics.json`` (``d2lite plot-metrics``).

Nothing here is imported by ``import d2lite`` except ``plot_metrics``, which the trainer's
``TrainingCurvesWriter`` reaches through ``d2lite.utils.plot_metrics``; matplotlib itself is
imported only when a figure is drawn.
"""
