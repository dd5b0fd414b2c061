"""Where ``TrainingCurvesWriter`` finds the training-curve plots, now in :mod:`d2lite.extras.plot_metrics`."""
from d2lite.extras.plot_metrics import load_metrics, main, plot_training_curves, save_figure

__all__ = ["load_metrics", "plot_training_curves", "save_figure", "main"]
