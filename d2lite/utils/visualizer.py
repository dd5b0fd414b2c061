"""Draw boxes and labels on images with PIL: predictions, dataset dicts, or anything by hand.

Detectron2's ``Visualizer`` API (boxes, and masks given as polygons, binary masks or COCO RLE;
no keypoints or segmentation maps), rendered with ``PIL.ImageDraw`` instead of matplotlib
figures, so it is fast and needs no display. Each class has
a fixed colour, and every label sits on a box filled with that colour in black or white text,
whichever contrasts more, so labels stay readable on dark and light images.

N: number of instances to draw.
"""
from __future__ import annotations

import functools
import math
from enum import Enum, unique
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from pycocotools import mask as mask_util

from d2lite.data.catalog import MetadataCatalog
from d2lite.structures import (
    BitMasks,
    Boxes,
    BoxMode,
    Keypoints,
    PolygonMasks,
    RotatedBoxes,
    polygons_to_bitmask,
)
from d2lite.utils.unsupported import unsupported_class

__all__ = [
    "ColorMode",
    "VisImage",
    "Visualizer",
    "draw_ground_truth_and_predictions",
    "random_color",
    "GenericMask",
]

# Detectron2's visualizer module also hands out these names; scripts import them from here.
_REEXPORTED = (BitMasks, Keypoints, MetadataCatalog, PolygonMasks, RotatedBoxes)

# 20 well-separated colours (RGB 0..255); class i gets _PALETTE[i % 20].
_PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
]  # fmt: skip

_Color = tuple[int, int, int]

# Detectron2's mask-conversion helper; d2lite draws masks through Visualizer.overlay_instances.
GenericMask = unsupported_class("GenericMask", "mask conversions", __name__)


def random_color(rgb: bool = False, maximum: int = 255) -> np.ndarray:
    """A random colour of the palette, as Detectron2's ``random_color``.

    Args:
        rgb (bool): RGB order; BGR otherwise. Defaults to False.
        maximum (int): 255 for 0..255 values, 1 for 0..1 floats. Defaults to 255.

    Returns:
        np.ndarray[3]: the colour.
    """
    color = np.array(_PALETTE[np.random.randint(len(_PALETTE))], dtype=np.float64) / 255 * maximum
    return color if rgb else color[::-1]


@unique
class ColorMode(Enum):
    """How to colour instances; kept for Detectron2 compatibility.

    IMAGE and SEGMENTATION both colour by class here; IMAGE_BW draws on a grey copy of the
    image so the boxes stand out.
    """

    IMAGE = 0
    SEGMENTATION = 1
    IMAGE_BW = 2


def _to_rgb255(color: Any) -> _Color:
    """Reads a matplotlib colour name/hex, floats in [0, 1] or ints in [0, 255] as RGB ints."""
    if isinstance(color, str):
        # Lazy import: only string colours (Detectron2's defaults, e.g. "g") need matplotlib.
        from matplotlib.colors import to_rgb

        color = to_rgb(color)
    values = [float(c) for c in color][:3]
    if len(values) != 3:
        raise ValueError(f"A colour needs 3 components (RGB), got {color!r}")
    # (1, 1, 1) as ints is near-black, as floats white: the type decides, as in matplotlib.
    all_int = all(isinstance(c, (int, np.integer)) for c in color[:3])
    is_unit = not all_int and max(values) <= 1.0
    return tuple(int(round(v * 255)) if is_unit else int(np.clip(v, 0, 255)) for v in values)


def _contrasting_text(rgb: _Color) -> _Color:
    """Black text on light backgrounds, white on dark ones (ITU-R BT.601 luma)."""
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size))


def _create_text_labels(
    classes: Sequence[int] | None,
    scores: Sequence[float] | None,
    class_names: Sequence[str] | None,
    is_crowd: Sequence[bool] | None = None,
) -> list[str] | None:
    """Labels like Detectron2's, ``"Paper 87%"``; without a name, ``"class 8: 87%"``.

    Detectron2 writes a class without a name as its bare id, so class 8 at 84% read "8 84%",
    one number at a glance; d2lite says "class 8", and puts a colon before the score.

    Args:
        classes (Sequence[int] | None): class ids.
        scores (Sequence[float] | None): scores in [0, 1].
        class_names (Sequence[str] | None): names indexed by class id.
        is_crowd (Sequence[bool] | None): adds ``"|crowd"`` where true. Defaults to None.

    Returns:
        list[str] | None: one label per instance, or None when there are neither classes nor scores.
    """
    labels = None
    if classes is not None:
        names = class_names if class_names is not None else ()
        known = [0 <= i < len(names) for i in classes]
        labels = [names[i] if k else f"class {i}" for i, k in zip(classes, known)]
    if scores is not None:
        pct = [f"{s * 100:.0f}%" for s in scores]
        if labels is None:
            labels = pct
        else:
            labels = [f"{lab}{' ' if k else ': '}{p}" for lab, k, p in zip(labels, known, pct)]
    if labels is not None and is_crowd is not None:
        labels = [lab + ("|crowd" if crowd else "") for lab, crowd in zip(labels, is_crowd)]
    return labels


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two (x0, y0, x1, y1) rectangles share pixels."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _convert_boxes(boxes: Any) -> np.ndarray:
    """Boxes, a tensor, an array or nested lists -> float array[N, 4] in XYXY_ABS."""
    if isinstance(boxes, Boxes):
        boxes = boxes.tensor
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.detach().cpu().numpy()
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"Boxes to draw must have shape (N, 4) in XYXY_ABS, got {arr.shape}")
    return arr


def _mask_to_array(mask: Any, height: int, width: int) -> np.ndarray:
    """One instance mask in any Detectron2 form -> bool array[H, W].

    Accepted: polygons (a list of flat ``[x0, y0, x1, y1, ...]`` sequences), a COCO RLE dict
    (compressed or not), or a binary array / tensor of shape (H, W).
    """
    if isinstance(mask, dict):
        rle = mask
        if isinstance(rle.get("counts"), list):
            rle = mask_util.frPyObjects(rle, *rle["size"])
        return mask_util.decode(rle).astype(bool)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    if isinstance(mask, np.ndarray) and mask.ndim == 2:
        return mask.astype(bool)
    return polygons_to_bitmask([p for p in mask if len(p) >= 6], height, width)


def _mask_boxes(masks: list[np.ndarray]) -> np.ndarray:
    """The tight XYXY box of each mask (zeros for an empty mask), to place labels."""
    boxes = np.zeros((len(masks), 4))
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if len(xs):
            boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return boxes


class VisImage:
    """The canvas the Visualizer draws on.

    Args:
        img (np.ndarray[H, W, 3]): uint8 RGB image.
        scale (float): the canvas is the image resized by this factor. Defaults to 1.0.
    """

    def __init__(self, img: np.ndarray, scale: float = 1.0) -> None:
        self.height, self.width = img.shape[:2]
        self.scale = scale
        pil = Image.fromarray(np.ascontiguousarray(img[:, :, :3], dtype=np.uint8))
        size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
        self.canvas = pil if scale == 1.0 else pil.resize(size, Image.BILINEAR)

    def save(self, filepath: str) -> None:
        """Writes the canvas; the format follows the file extension (e.g. .png, .jpg)."""
        self.canvas.save(filepath)

    def get_image(self) -> np.ndarray:
        """Returns the canvas as a uint8 RGB array[H', W', 3], with H' = round(H * scale)."""
        return np.asarray(self.canvas, dtype=np.uint8).copy()


class Visualizer:
    """Draws on a copy of an RGB image.

    Args:
        img_rgb (np.ndarray[H, W, 3]): RGB image, values in [0, 255]; (H, W) grey is accepted.
        metadata (Metadata | None): ``thing_classes`` name the classes and ``thing_colors``
            (RGB 0..255) override the palette when present. Defaults to None.
        scale (float): output size relative to the image. Defaults to 1.0.
        instance_mode (ColorMode): see ``ColorMode``. Defaults to ColorMode.IMAGE.
    """

    def __init__(
        self,
        img_rgb: np.ndarray,
        metadata: Any = None,
        scale: float = 1.0,
        instance_mode: ColorMode = ColorMode.IMAGE,
    ) -> None:
        img = np.asarray(img_rgb)
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        if img.ndim != 3 or img.shape[2] not in (3, 4):
            raise ValueError(f"Visualizer needs an RGB image of shape (H, W, 3), got {img.shape}")
        self.img = np.clip(img[:, :, :3], 0, 255).astype(np.uint8)
        if instance_mode == ColorMode.IMAGE_BW:
            grey = self.img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            self.img = np.repeat(grey[:, :, None], 3, axis=2).astype(np.uint8)
        self.metadata = metadata
        self.output = VisImage(self.img, scale=scale)
        self._instance_mode = instance_mode
        # Same rule as Detectron2: text grows with the image, never below 10 px on the canvas.
        area = self.output.height * self.output.width
        self._default_font_size = max(math.sqrt(area) // 90, 10 // scale)
        # Canvas rectangles of the labels drawn so far, which new box labels avoid.
        self._placed_labels: list[tuple[int, int, int, int]] = []

    def get_output(self) -> VisImage:
        """Returns the canvas with everything drawn so far."""
        return self.output

    def _meta(self, key: str) -> Any:
        return getattr(self.metadata, key, None)  # None without metadata too

    def _class_colors(self, classes: Sequence[int]) -> list[_Color]:
        custom = self._meta("thing_colors") or ()
        return [_to_rgb255(custom[c]) if c < len(custom) else _PALETTE[c % 20] for c in classes]

    def draw_instance_predictions(self, predictions: Any) -> VisImage:
        """Draws model outputs: boxes coloured by class and ``"class 87%"`` labels.

        Args:
            predictions (Instances): with ``pred_boxes``, ``scores`` and ``pred_classes`` (any of
                them may be missing), as in the ``"instances"`` of a model output, on any device.

        Returns:
            VisImage: the canvas.
        """
        boxes = predictions.pred_boxes if predictions.has("pred_boxes") else None
        scores = predictions.scores.tolist() if predictions.has("scores") else None
        classes = predictions.pred_classes.tolist() if predictions.has("pred_classes") else None
        masks = predictions.pred_masks if predictions.has("pred_masks") else None
        labels = _create_text_labels(classes, scores, self._meta("thing_classes"))
        colors = self._class_colors(classes) if classes is not None else None
        return self.overlay_instances(boxes=boxes, labels=labels, masks=masks, assigned_colors=colors)

    def draw_dataset_dict(self, dic: dict) -> VisImage:
        """Draws the ground truth of a Detectron2 dataset dict.

        Args:
            dic (dict): with ``"annotations"``, each having ``bbox``, ``category_id`` and
                optionally ``bbox_mode`` (XYWH_ABS when absent, as in COCO files) and ``iscrowd``.

        Returns:
            VisImage: the canvas.
        """
        annos = dic.get("annotations") or []
        to_xyxy = BoxMode.XYXY_ABS
        boxes = [
            BoxMode.convert(list(a["bbox"]), a.get("bbox_mode", BoxMode.XYWH_ABS), to_xyxy)
            for a in annos
        ]
        classes = [int(a["category_id"]) for a in annos]
        crowd = [bool(a.get("iscrowd", 0)) for a in annos]
        labels = _create_text_labels(classes, None, self._meta("thing_classes"), is_crowd=crowd)
        colors = self._class_colors(classes)
        with_masks = annos and all(a.get("segmentation") for a in annos)
        masks = [a["segmentation"] for a in annos] if with_masks else None
        return self.overlay_instances(boxes=boxes, labels=labels, masks=masks, assigned_colors=colors)

    def overlay_instances(
        self,
        *,
        boxes: Any = None,
        labels: Sequence[str] | None = None,
        masks: Any = None,
        keypoints: Any = None,
        assigned_colors: Sequence[Any] | None = None,
        alpha: float = 0.5,
    ) -> VisImage:
        """Draws masks, then boxes with labels at their top-left corners; small ones on top.

        Args:
            boxes (Boxes | Tensor[N, 4] | np.ndarray[N, 4] | list | None): XYXY_ABS boxes.
            labels (Sequence[str] | None): one label per instance. Defaults to None.
            masks (list | Tensor[N, H, W] | np.ndarray[N, H, W] | None): per instance polygons,
                a COCO RLE dict or a binary mask. Labels go on the masks when there are no
                boxes. Defaults to None.
            keypoints: not supported by d2lite; must be None.
            assigned_colors (Sequence | None): one colour per instance (see ``draw_box``);
                palette colours by position when None. Defaults to None.
            alpha (float): mask opacity; box edges are at least 0.8. Defaults to 0.5.

        Returns:
            VisImage: the canvas.
        """
        if keypoints is not None:
            raise NotImplementedError("d2lite's Visualizer does not draw keypoints")
        h, w = self.output.height, self.output.width
        mask_arrays = None if masks is None else [_mask_to_array(m, h, w) for m in masks]
        arr = _convert_boxes(boxes) if boxes is not None else _mask_boxes(mask_arrays or [])
        n, unit = len(arr), "boxes" if boxes is not None else "masks"
        for what, items in (("labels", labels), ("masks", mask_arrays), ("colours", assigned_colors)):
            if items is not None and len(items) != n:
                raise ValueError(f"Got {len(items)} {what} for {n} {unit}")
        if assigned_colors is None:
            assigned_colors = [_PALETTE[i % len(_PALETTE)] for i in range(n)]
        areas = (arr[:, 2] - arr[:, 0]) * (arr[:, 3] - arr[:, 1])
        order = np.argsort(-areas, kind="stable")
        colors = [_to_rgb255(c) for c in assigned_colors]
        for i in order:
            if mask_arrays is not None:
                self.draw_binary_mask(mask_arrays[i], color=colors[i], alpha=alpha)
            if boxes is not None:
                self.draw_box(arr[i], alpha=max(alpha, 0.8), edge_color=colors[i])
        # Labels after every box, so no box edge crosses a label.
        for i in order if labels is not None else ():
            self._draw_label_at_box(labels[i], arr[i][0], arr[i][1], colors[i])
        return self.output

    def draw_binary_mask(
        self, binary_mask: np.ndarray, color: Any = None, *, alpha: float = 0.5, **kwargs: Any
    ) -> VisImage:
        """Tints the pixels of a mask (array[H, W] of the image's size) with ``color``.

        Args:
            binary_mask (np.ndarray[H, W]): non-zero where the instance is.
            color: the tint (see ``draw_box``). Defaults to None (the first palette colour).
            alpha (float): tint opacity. Defaults to 0.5.
            **kwargs: Detectron2's ``edge_color``, ``text`` and ``area_threshold``, ignored.

        Returns:
            VisImage: the canvas.
        """
        canvas = self.output.canvas
        level = (np.asarray(binary_mask) != 0).astype(np.uint8) * int(round(255 * alpha))
        stencil = Image.fromarray(level).resize(canvas.size, Image.NEAREST)
        fill = _to_rgb255(color if color is not None else _PALETTE[0])
        canvas.paste(Image.new("RGB", canvas.size, fill), (0, 0), stencil)
        return self.output

    def draw_polygon(
        self, segment: np.ndarray, color: Any, edge_color: Any = None, alpha: float = 0.5
    ) -> VisImage:
        """Fills one polygon (array[K, 2] of image pixels) with ``color``."""
        poly = [np.asarray(segment, dtype=np.float64).reshape(-1)]
        mask = _mask_to_array(poly, self.output.height, self.output.width)
        return self.draw_binary_mask(mask, color=color, alpha=alpha)

    def _draw_label_at_box(self, text: str, x0: float, y0: float, color: _Color) -> None:
        """Puts the label just above the box, or inside its top edge when there is no room;
        if another label is there already, one or more label heights further down or up."""
        label = self._render_label(text, self._default_font_size, color)
        s, h = self.output.scale, label.height
        x, y = x0 * s, y0 * s
        first = y - h if y - h >= 0 else y
        # Cheap: a few vertical shifts, no global layout; the first free one wins.
        candidates = [first] + [first + k * d for k in (1, 2, 3) for d in (h, -h)]
        spots = [self._clip_label(label, x, cy) for cy in candidates]
        free = (s for s in spots if not any(_overlap(s, other) for other in self._placed_labels))
        self._paste_label(label, next(free, spots[0]))

    def draw_box(
        self,
        box_coord: Sequence[float],
        alpha: float = 0.5,
        edge_color: Any = "g",
        line_style: str = "-",
    ) -> VisImage:
        """Draws one box outline.

        Args:
            box_coord (Sequence[float]): (x0, y0, x1, y1) in image pixels.
            alpha (float): edge opacity in [0, 1]. Defaults to 0.5.
            edge_color: matplotlib colour name, RGB floats in [0, 1] or ints. Defaults to "g".
            line_style (str): "-" solid, "--" dashed. Defaults to "-".

        Returns:
            VisImage: the canvas.
        """
        s = self.output.scale
        x0, y0, x1, y1 = (float(v) * s for v in box_coord)
        x0, x1 = min(x0, x1), max(x0, x1)
        y0, y1 = min(y0, y1), max(y0, y1)
        width = int(max(self._default_font_size * s / 4, 1))
        rgba = (*_to_rgb255(edge_color), int(round(255 * alpha)))
        draw = ImageDraw.Draw(self.output.canvas, "RGBA")
        if line_style == "-":
            draw.rectangle([x0, y0, x1, y1], outline=rgba, width=width)
            return self.output
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
        dash = max(3.0, width * 3.0)
        for (ax, ay), (bx, by) in zip(corners, corners[1:]):
            length = math.hypot(bx - ax, by - ay)
            for t in np.arange(0.0, length, 2 * dash):
                t0, t1 = t / max(length, 1e-6), min(t + dash, length) / max(length, 1e-6)
                start = (ax + (bx - ax) * t0, ay + (by - ay) * t0)
                end = (ax + (bx - ax) * t1, ay + (by - ay) * t1)
                draw.line([start, end], fill=rgba, width=width)
        return self.output

    def draw_text(
        self,
        text: str,
        position: tuple[float, float],
        *,
        font_size: float | None = None,
        color: Any = "g",
        horizontal_alignment: str = "center",
        rotation: float = 0,
    ) -> VisImage:
        """Draws ``text`` on a label box filled with ``color``, in black or white for contrast.

        Args:
            text (str): the text.
            position (tuple[float, float]): (x, y) of the label's top edge in image pixels.
            font_size (float | None): in image pixels; the Visualizer's default when None.
                Defaults to None.
            color: label box colour (matplotlib name, RGB floats in [0, 1] or ints).
                Defaults to "g".
            horizontal_alignment (str): "left", "center" or "right" of the label at x.
                Defaults to "center".
            rotation (float): counter-clockwise degrees. Defaults to 0.

        Returns:
            VisImage: the canvas.
        """
        if horizontal_alignment not in ("left", "center", "right"):
            raise ValueError(
                f"horizontal_alignment must be left, center or right, got {horizontal_alignment!r}"
            )
        s = self.output.scale
        size = font_size if font_size is not None else self._default_font_size
        label = self._render_label(text, size, _to_rgb255(color), rotation)
        offset = {"left": 0, "center": label.width / 2, "right": label.width}[horizontal_alignment]
        self._paste_label(label, self._clip_label(label, position[0] * s - offset, position[1] * s))
        return self.output

    def _render_label(
        self, text: str, size: float, fill: _Color, rotation: float = 0
    ) -> Image.Image:
        """The label as an RGBA image: ``text`` in black or white on a ``fill`` box."""
        s = self.output.scale
        font = _font(int(round(size * s)))
        left, top, right, bottom = font.getbbox(text)
        pad = max(1, int(size * s * 0.15))
        label = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (*fill, 230))
        ink = _contrasting_text(fill)
        ImageDraw.Draw(label).text((pad - left, pad - top), text, font=font, fill=ink)
        if rotation:
            label = label.rotate(rotation, expand=True, resample=Image.BICUBIC)
        return label

    def _clip_label(self, label: Image.Image, x: float, y: float) -> tuple[int, int, int, int]:
        """The label's (x0, y0, x1, y1) on the canvas at top-left (x, y), moved inside it, so
        labels of boxes at the border stay readable."""
        canvas = self.output.canvas
        px = int(np.clip(x, 0, max(0, canvas.width - label.width)))
        py = int(np.clip(y, 0, max(0, canvas.height - label.height)))
        return px, py, px + label.width, py + label.height

    def _paste_label(self, label: Image.Image, spot: tuple[int, int, int, int]) -> None:
        self.output.canvas.paste(label, spot[:2], label)
        self._placed_labels.append(spot)


def _boxes(n: int) -> str:
    return f"{n} box" if n == 1 else f"{n} boxes"


def _side_by_side(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """The panels (title, uint8 image[H, W, 3]) in a row, 4 px apart on white, each under
    its title line."""
    height = max(img.shape[0] for _, img in panels)
    size = int(max(10, math.sqrt(height * panels[0][1].shape[1]) // 20))
    strip, gap = int(size * 1.6), 4
    width = sum(img.shape[1] for _, img in panels) + gap * (len(panels) - 1)
    out = Image.new("RGB", (width, strip + height), (255, 255, 255))
    draw, x = ImageDraw.Draw(out), 0
    for title, img in panels:
        draw.text((x + 2, (strip - size) // 2), title, font=_font(size), fill=(0, 0, 0))
        out.paste(Image.fromarray(img), (x, strip))
        x += img.shape[1] + gap
    return np.asarray(out)


def draw_ground_truth_and_predictions(
    img_rgb: np.ndarray,
    predictions: Any,
    dataset_dict: dict | None = None,
    metadata: Any = None,
    *,
    score_threshold: float = 0.0,
    scale: float = 1.0,
) -> VisImage:
    """Draws an image's ground truth (left) beside the model's predictions (right).

    Each panel has a title line ("ground truth: 3 boxes", "predictions: 4 boxes, score >=
    0.50"), and a class has the same colour in both. Without ``dataset_dict``, or when it
    has no ``"annotations"`` (an image without labels), only the predictions are drawn.

    Args:
        img_rgb (np.ndarray[H, W, 3]): the image, RGB in [0, 255].
        predictions (Instances): the model's ``"instances"`` for this image, in its pixels,
            with ``pred_boxes``, ``scores`` and ``pred_classes``, on any device.
        dataset_dict (dict | None): the image's dataset dict as ``DatasetCatalog`` returns it:
            its ``"annotations"`` (``bbox``, ``bbox_mode``, contiguous ``category_id``) are
            the ground truth. Defaults to None.
        metadata (Metadata | None): ``thing_classes`` name the classes, ``thing_colors``
            colour them. Defaults to None.
        score_threshold (float): predictions scoring below it are not drawn. Defaults to 0.
        scale (float): each panel's size relative to the image. Defaults to 1.0.

    Returns:
        VisImage: the picture, ``W' + 4 + W'`` wide (one ``W'`` without ground truth) and a
        title line taller than the image scaled by ``scale``; ``save(path)`` writes it.
    """
    if predictions.has("scores"):
        predictions = predictions[predictions.scores >= score_threshold]
    drawn = Visualizer(img_rgb, metadata, scale=scale).draw_instance_predictions(predictions)
    title = f"predictions: {_boxes(len(predictions))}"
    # ">=": PIL's default font has no "≥".
    title += f", score >= {score_threshold:.2f}" if score_threshold > 0 else ""
    panels = [(title, drawn.get_image())]
    if dataset_dict is not None and "annotations" in dataset_dict:
        truth = Visualizer(img_rgb, metadata, scale=scale).draw_dataset_dict(dataset_dict)
        num_gt = len(dataset_dict["annotations"])
        panels.insert(0, (f"ground truth: {_boxes(num_gt)}", truth.get_image()))
    return VisImage(_side_by_side(panels))
