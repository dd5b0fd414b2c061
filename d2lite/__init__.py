"""d2lite: a small, Detectron2-compatible Faster R-CNN training library."""

__version__ = "0.1.0"
