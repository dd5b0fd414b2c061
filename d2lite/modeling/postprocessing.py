"""Maps detections from the resized network input back to the size the caller asked for.

R: detections of one image.
"""
from __future__ import annotations

import torch

from ..structures import Boxes, Instances

__all__ = ["detector_postprocess"]


def detector_postprocess(
    results: Instances, output_height: int, output_width: int, mask_threshold: float = 0.5
) -> Instances:
    """Rescales the boxes of ``results`` to (output_height, output_width), clips them to that
    size and drops the boxes that became empty.

    The data loader resized the image; ``results.image_size`` is the size the model saw, and
    ``output_height``/``output_width`` usually the original image size.

    Args:
        results (Instances): R detections with ``pred_boxes`` (or ``proposal_boxes``).
        output_height (int): height of the output resolution.
        output_width (int): width of the output resolution.
        mask_threshold (float): unused (no mask head); kept for Detectron2's signature.
            Defaults to 0.5.

    Returns:
        Instances: the kept detections, with image_size (output_height, output_width).
    """
    if isinstance(output_width, torch.Tensor):
        # Traced sizes are tensors; float() keeps the division exact either way.
        scale_x = output_width.float() / results.image_size[1]
        scale_y = output_height.float() / results.image_size[0]
    else:
        scale_x = output_width / results.image_size[1]
        scale_y = output_height / results.image_size[0]
    results = Instances((output_height, output_width), **results.get_fields())
    box_field = next((f for f in ("pred_boxes", "proposal_boxes") if results.has(f)), None)
    if box_field is None:
        raise ValueError("detector_postprocess needs Instances with pred_boxes or proposal_boxes")
    # A copy, so that scaling in place leaves the caller's Instances untouched.
    output_boxes = Boxes(results.get(box_field).tensor.clone())
    results.set(box_field, output_boxes)
    output_boxes.scale(scale_x, scale_y)
    output_boxes.clip(results.image_size)
    return results[output_boxes.nonempty()]
