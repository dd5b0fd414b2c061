"""The training-curve plot, re-exported from :mod:`d2lite.extras.plot_metrics` for the engine's
``TrainingCurvesWriter``, which imports it from here."""
from d2lite.extras.plot_metrics import load_metrics, main, plot_training_curves, save_figure

__all__ = ["load_metrics", "plot_training_curves", "save_figure", "main"]
