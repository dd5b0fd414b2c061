"""Saving and loading model/optimizer/scheduler state (d2lite, Detectron2 and Caffe2 files)."""

from fvcore.common.checkpoint import Checkpointer, PeriodicCheckpointer

from .detection_checkpoint import DetectionCheckpointer

__all__ = ["Checkpointer", "PeriodicCheckpointer", "DetectionCheckpointer"]
