"""A synthetic recycling-trash detection dataset in the layout of the course's trash data.

``make_trash_dataset(out_dir, ...)`` writes ``train.json``, ``val.json`` and ``test.json`` (COCO
format, category ids 0..9, annotation ids from 0, test without annotations) and JPEG images under
``train/``, ``val/`` and ``test/``. Every class has its own shape, colour and texture family
with some variation inside the class, so a small detector trained from scratch can learn to tell
them apart in minutes; objects come in COCO small, medium and large sizes, overlap a little and sit
on cluttered backgrounds (gradients, noise, distractor lines). The output depends only on the
arguments: each image draws from its own numpy Generator seeded by ``(seed, split, index)``.

Run it as ``python -m d2lite.extras.synthetic OUT --train 300 --val 60 --test 40``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .trash import TRASH_CLASSES

__all__ = ["TRASH_CLASSES", "make_trash_dataset", "generate_image", "main"]

logger = logging.getLogger(__name__)

_SPLITS = ("train", "val", "test")
_Box = tuple[int, int, int, int]  # x0, y0, x1, y1, inclusive pixel corners
_Color = tuple[int, int, int]


def _tint(rng: np.random.Generator, rgb: Sequence[int], amount: int = 18) -> _Color:
    """Jitters a base colour so instances of one class are alike but not identical."""
    shifted = np.asarray(rgb) + rng.integers(-amount, amount + 1, size=3)
    return tuple(int(c) for c in np.clip(shifted, 0, 255))


def _fit(points: Sequence[tuple[float, float]], box: _Box) -> list[tuple[float, float]]:
    """Maps unit-square points onto ``box`` so the shape touches all four box edges."""
    x0, y0, x1, y1 = box
    return [(x0 + px * (x1 - x0), y0 + py * (y1 - y0)) for px, py in points]


def _general_trash(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: _Box) -> None:
    """Brown crumpled lump: an irregular polygon with dark speckles."""
    k = int(rng.integers(7, 12))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = rng.uniform(0.55, 1.0, k)
    xs, ys = np.cos(angles) * radii, np.sin(angles) * radii
    # Normalise to the unit square so the drawn polygon's extent is exactly the box.
    xs = (xs - xs.min()) / (xs.max() - xs.min())
    ys = (ys - ys.min()) / (ys.max() - ys.min())
    draw.polygon(_fit(list(zip(xs, ys)), box), fill=_tint(rng, (115, 80, 45)), outline=(60, 40, 20))
    x0, y0, x1, y1 = box
    for _ in range(int(rng.integers(6, 16))):
        cx, cy = rng.uniform(0.3, 0.7) * (x1 - x0) + x0, rng.uniform(0.3, 0.7) * (y1 - y0) + y0
        r = max(1.0, (x1 - x0) * 0.04)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(45, 30, 15))


def _paper(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: _Box) -> None:
    """Cream sheet with dark text lines and a folded corner."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.rectangle(box, fill=_tint(rng, (238, 228, 195), 10), outline=(150, 145, 130))
    step = max(3.0, h / 9)
    y = y0 + h * 0.15
    while y < y1 - h * 0.1:
        draw.line([(x0 + w * 0.12, y), (x0 + w * rng.uniform(0.55, 0.88), y)], fill=(50, 50, 60))
        y += step
    fold = w * 0.22
    draw.polygon([(x1 - fold, y0), (x1, y0 + fold), (x1 - fold, y0 + fold)], fill=(200, 190, 160))


def _paper_pack(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: _Box) -> None:
    """Tall light-blue carton with a white gable top and a red band."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    body = _tint(rng, (80, 150, 225))
    draw.polygon([(x0, y0 + h * 0.2), (x0 + w / 2, y0), (x1, y0 + h * 0.2)], fill=(235, 240, 245))
    draw.rectangle([x0, y0 + h * 0.2, x1, y1], fill=body, outline=(30, 60, 110))
    draw.rectangle([x0, y0 + h * 0.45, x1, y0 + h * 0.62], fill=(245, 245, 245))
    draw.rectangle([x0, y0 + h * 0.5, x1, y0 + h * 0.56], fill=(210, 40, 40))


def _metal(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: _Box) -> None:
    """Silver can: a shaded cylinder with dark elliptic rims and vertical highlights."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    base = np.asarray(_tint(rng, (170, 175, 185), 12))
    cols = max(2, int(w))
    for i in range(cols):
        # A cosine shading across the width reads as a metallic cylinder.
        shade = 0.65 + 0.45 * np.cos((i / cols - 0.3) * np.pi)
        c = tuple(int(v) for v in np.clip(base * shade, 0, 255))
        x = x0 + i * w / cols
        draw.line([(x, y0 + h * 0.06), (x, y1 - h * 0.06)], fill=c)
    rim = (95, 100, 110)
    draw.ellipse([x0, y0, x1, y0 + h * 0.12], fill=(205, 210, 220), outline=rim)
    draw.ellipse([x0, y1 - h * 0.12, x1, y1], fill=rim)


def _glass(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: _Box) -> None:
    """Green bottle: narrow neck, sloped shoulders, a lighter highlight stripe."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    green = _tint(rng, (35, 140, 60))
    bottle = [(0.38, 0), (0.62, 0), (0.62, 0.28), (1, 0.45), (1, 1), (0, 1), (0, 0.45)]
    bottle.append((0.38, 0.28))
    draw.polygon(_fit(bottle, box), fill=green, outline=(15, 70, 30))
    draw.rectangle([x0 + w * 0.36, y0, x0 + w * 0.64, y0 + h * 0.06], fill=(120, 80, 40))
    hx = x0 + w * 0.22
    draw.line([(hx, y0 + h * 0.5), (hx, y1 - h * 0.08)], fill=(150, 225, 160), width=max(1, w // 8))


def _plastic(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: _Box) -> None:
    """Cyan tub: a trapezoid with a white rim and horizontal ribs."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.polygon(_fit([(0, 0), (1, 0), (0.85, 1), (0.15, 1)], box), fill=_tint(rng, (70, 215, 225)))
    draw.rectangle([x0, y0, x1, y0 + max(2, h * 0.1)], fill=(240, 250, 250))
    for frac in (0.35, 0.55, 0.75):
        inset = w * 0.15 * frac
        y = y0 + h * frac
        draw.line([(x0 + inset + 2, y), (x1 - inset - 2, y)], fill=(20, 120, 140))


def _styrofoam(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: _Box) -> None:
    """Bright white rounded tray with a grey bead texture."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    radius = max(1, int(min(w, h) * 0.25))
    white = _tint(rng, (248, 248, 245), 6)
    draw.rounded_rectangle(box, radius=radius, fill=white, outline=(170, 170, 170))
    r = max(1.0, min(w, h) * 0.035)
    for _ in range(int(rng.integers(12, 30))):
        cx, cy = x0 + rng.uniform(0.15, 0.85) * w, y0 + rng.uniform(0.15, 0.85) * h
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(185, 185, 190))


def _plastic_bag(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: _Box) -> None:
    """Yellow bag: a wavy body with two handle loops and darker wrinkles."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    yellow = _tint(rng, (240, 205, 35))
    edge = (150, 120, 10)
    lw = max(1, int(w * 0.07))
    draw.ellipse([x0, y0, x0 + w * 0.45, y0 + h * 0.45], outline=yellow, width=lw)
    draw.ellipse([x1 - w * 0.45, y0, x1, y0 + h * 0.45], outline=yellow, width=lw)
    wave = [(0.05, 0.25), (0.5, 0.32), (0.95, 0.25), (1, 0.6), (0.9, 1), (0.5, 0.92), (0.1, 1)]
    wave.append((0, 0.6))
    draw.polygon(_fit(wave, box), fill=yellow, outline=edge)
    for _ in range(3):
        a = (x0 + rng.uniform(0.2, 0.8) * w, y0 + rng.uniform(0.4, 0.6) * h)
        draw.line([a, (a[0] + rng.uniform(-0.2, 0.2) * w, y0 + 0.85 * h)], fill=edge)


def _battery(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: _Box) -> None:
    """Lying cell: a black body, a copper end band and a grey terminal."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    body_end = x1 - w * 0.08
    radius = max(1, int(h * 0.2))
    draw.rounded_rectangle([x0, y0, body_end, y1], radius=radius, fill=_tint(rng, (28, 28, 30), 8))
    draw.rectangle([x0 + w * 0.6, y0, body_end, y1], fill=_tint(rng, (225, 120, 30), 12))
    draw.rectangle([body_end, y0 + h * 0.3, x1, y1 - h * 0.3], fill=(160, 160, 165))


def _clothing(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: _Box) -> None:
    """Crimson T-shirt with light horizontal stripes across the torso."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    shirt = [
        (0, 0.16), (0.3, 0), (0.4, 0.08), (0.6, 0.08), (0.7, 0), (1, 0.16),
        (0.88, 0.42), (0.78, 0.34), (0.78, 1), (0.22, 1), (0.22, 0.34), (0.12, 0.42),
    ]  # fmt: skip
    draw.polygon(_fit(shirt, box), fill=_tint(rng, (185, 25, 70)), outline=(90, 10, 30))
    stripe = max(1, int(h * 0.05))
    for frac in (0.45, 0.62, 0.79):
        y = y0 + h * frac
        draw.line([(x0 + w * 0.23, y), (x0 + w * 0.77, y)], fill=(240, 200, 215), width=stripe)


# Per class: the drawer and the range of width / height aspect ratios it is drawn with.
_CLASS_STYLES: list[tuple[Callable, tuple[float, float]]] = [
    (_general_trash, (0.7, 1.4)),
    (_paper, (0.65, 0.85)),
    (_paper_pack, (0.42, 0.6)),
    (_metal, (0.5, 0.7)),
    (_glass, (0.3, 0.42)),
    (_plastic, (0.85, 1.2)),
    (_styrofoam, (1.3, 1.9)),
    (_plastic_bag, (0.8, 1.15)),
    (_battery, (2.0, 2.8)),
    (_clothing, (1.0, 1.3)),
]


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A two-colour gradient with noise and distractor lines, so boxes are not free to find."""
    c0, c1 = rng.uniform(50, 190, 3), rng.uniform(50, 190, 3)
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    grad = c0 + (c1 - c0) * t
    grad = grad if rng.random() < 0.5 else grad.transpose(1, 0, 2)
    pixels = np.broadcast_to(grad, (size, size, 3)) + rng.normal(0, 9, (size, size, 3))
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(4, 11))):
        pts = [tuple(rng.uniform(0, size, 2)) for _ in range(2)]
        color = tuple(int(v) for v in rng.uniform(40, 200, 3))
        draw.line(pts, fill=color, width=int(rng.integers(1, 4)))
    return img


def _iou(a: _Box, b: _Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _place_objects(rng: np.random.Generator, size: int) -> list[tuple[int, _Box]]:
    """Samples 1-6 (class, box) pairs with log-uniform sizes and at most moderate overlap."""
    placed: list[tuple[int, _Box]] = []
    for _ in range(int(rng.integers(1, 7))):
        for _attempt in range(20):
            cls = int(rng.integers(0, len(TRASH_CLASSES)))
            lo, hi = _CLASS_STYLES[cls][1]
            aspect = rng.uniform(lo, hi)
            # sqrt(area) from 16 px to 60% of the image covers COCO small, medium and large.
            side = np.exp(rng.uniform(np.log(16), np.log(0.6 * size)))
            w = int(min(size - 2, max(6, side * np.sqrt(aspect))))
            h = int(min(size - 2, max(6, side / np.sqrt(aspect))))
            x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            box = (x0, y0, x0 + w, y0 + h)
            if all(_iou(box, other) < 0.3 for _, other in placed):
                placed.append((cls, box))
                break
    return placed


def generate_image(
    rng: np.random.Generator, size: int
) -> tuple[Image.Image, list[tuple[int, _Box]]]:
    """Draws one scene.

    Args:
        rng (np.random.Generator): the only source of randomness.
        size (int): width and height of the square image in pixels.

    Returns:
        tuple[Image.Image, list[tuple[int, tuple]]]: the RGB image and its ``(category_id, box)``
        objects, boxes as ``(x0, y0, x1, y1)`` in pixels.
    """
    img = _background(rng, size)
    draw = ImageDraw.Draw(img)
    objects = _place_objects(rng, size)
    # Large objects first, so a small object lying on a large one stays visible.
    objects.sort(key=lambda o: -(o[1][2] - o[1][0]) * (o[1][3] - o[1][1]))
    for cls, box in objects:
        _CLASS_STYLES[cls][0](draw, rng, box)
    return img, objects


def _write_split(out_dir: str, split: int, count: int, size: int, seed: int) -> dict:
    name = _SPLITS[split]
    os.makedirs(os.path.join(out_dir, name), exist_ok=True)
    images, annotations = [], []
    for idx in range(count):
        rng = np.random.default_rng([seed, split, idx])
        img, objects = generate_image(rng, size)
        file_name = f"{name}/{idx:04d}.jpg"
        img.save(os.path.join(out_dir, file_name), quality=90)
        images.append(
            {"width": size, "height": size, "file_name": file_name, "license": 0, "id": idx}
        )
        for cls, (x0, y0, x1, y1) in objects:
            w, h = float(x1 - x0), float(y1 - y0)
            annotations.append(
                {
                    "id": len(annotations),
                    "image_id": idx,
                    "category_id": cls,
                    "bbox": [float(x0), float(y0), w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    categories = [
        {"id": i, "name": n, "supercategory": "Trash"} for i, n in enumerate(TRASH_CLASSES)
    ]
    return {
        "info": {"description": f"d2lite synthetic trash, seed {seed}", "version": "1.0"},
        "licenses": [{"id": 0, "name": "CC0"}],
        "images": images,
        "categories": categories,
        # Like the course's data, the test split ships without annotations.
        "annotations": [] if name == "test" else annotations,
    }


def make_trash_dataset(
    out_dir: str,
    *,
    num_train: int = 300,
    num_val: int = 60,
    num_test: int = 40,
    image_size: int = 256,
    seed: int = 0,
) -> dict[str, str]:
    """Writes the synthetic trash dataset.

    Args:
        out_dir (str): directory to create ``{train,val,test}.json`` and image folders in.
        num_train (int): training images. Defaults to 300.
        num_val (int): validation images. Defaults to 60.
        num_test (int): test images (written without annotations). Defaults to 40.
        image_size (int): side of the square images in pixels. Defaults to 256.
        seed (int): the same seed and arguments give byte-identical files. Defaults to 0.

    Returns:
        dict[str, str]: split name -> path of its JSON file.
    """
    counts = (num_train, num_val, num_test)
    if any(c < 0 for c in counts):
        raise ValueError(f"Image counts must be >= 0, got train/val/test = {counts}")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for split, count in enumerate(counts):
        data = _write_split(out_dir, split, count, image_size, seed)
        path = os.path.join(out_dir, f"{_SPLITS[split]}.json")
        with open(path, "w") as f:
            json.dump(data, f)
        paths[_SPLITS[split]] = path
        logger.info(f"Wrote {count} images and {len(data['annotations'])} boxes to {path}")
    return paths


def main(argv: Sequence[str] | None = None) -> dict[str, str]:
    """Command line: ``OUT [--train N] [--val N] [--test N] [--size S] [--seed K]``."""
    parser = argparse.ArgumentParser(description="Write the synthetic trash dataset (COCO format).")
    parser.add_argument("out_dir", help="output directory")
    parser.add_argument("--train", type=int, default=300, help="number of training images")
    parser.add_argument("--val", type=int, default=60, help="number of validation images")
    parser.add_argument("--test", type=int, default=40, help="number of test images")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    return make_trash_dataset(
        args.out_dir,
        num_train=args.train,
        num_val=args.val,
        num_test=args.test,
        image_size=args.size,
        seed=args.seed,
    )


if __name__ == "__main__":
    main()
