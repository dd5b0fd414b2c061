"""Read image files into HWC arrays in the format a model expects, and check their size and
where their paths lead.

``detection_utils`` re-exports these under Detectron2's names (``detection_utils.read_image``).
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from ..utils.file_io import PathManager

__all__ = [
    "SizeMismatchError",
    "convert_PIL_to_numpy",
    "convert_image_to_rgb",
    "read_image",
    "check_image_size",
    "high_bit_depth_note",
    "find_paths_outside_root",
]

logger = logging.getLogger(__name__)

# PIL modes with more than 8 bits per channel. PIL's own convert() to an 8-bit mode clips them,
# so nearly every pixel of a 16-bit photo would turn white; see _to_8_bit for what happens instead.
_16_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_32_BIT_MODES = ("I", "F")
_HIGH_BIT_DEPTH_MODES = _16_BIT_MODES + _32_BIT_MODES
# Modes read_image has already warned about in this process (once each, not once per image).
_warned_modes: set[str] = set()

# RGB <-> YUV (ITU-R BT.601), for image_format "YUV-BT.601".
_M_RGB2YUV = np.array(
    [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]]
)
_M_YUV2RGB = np.array([[1.0, 0.0, 1.13983], [1.0, -0.39465, -0.58060], [1.0, 2.03211, 0.0]])


class SizeMismatchError(ValueError):
    """An image's real size differs from the height/width its dataset dict claims."""


def high_bit_depth_note(mode: str) -> str | None:
    """How ``read_image`` brings an image of PIL ``mode`` to 8 bits; None for 8-bit modes."""
    if mode in _16_BIT_MODES:
        return f"{mode} (16-bit) is scaled from 0..65535 to 0..255 (value >> 8, as cv2.imread)"
    if mode in _32_BIT_MODES:
        return f"{mode} (32-bit) is scaled from its own min..max to 0..255"
    return None


def _to_8_bit(image: Image.Image) -> Image.Image:
    """A mode "L" copy of a high-bit-depth image, scaled from its real range.

    16-bit images declare their range, so they are scaled from the full 0..65535: a pixel value
    means the same brightness in every image of a dataset, and the result equals what
    ``cv2.imread`` gives. Modes "I" and "F" declare none (int32's range would make any image
    black, floats have no range), so the image's own finite min..max is the only range there is;
    a constant image becomes 0, NaN 0, +inf 255.
    """
    values = np.asarray(image)
    if image.mode in _16_BIT_MODES:
        return Image.fromarray((values.astype(np.uint16) >> 8).astype(np.uint8))
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    scale = 255.0 / (high - low) if high > low else 0.0
    with np.errstate(invalid="ignore"):
        scaled = np.nan_to_num((values - low) * scale, nan=0.0, posinf=255.0, neginf=0.0)
    return Image.fromarray(np.rint(np.clip(scaled, 0, 255)).astype(np.uint8))


def _target_mode(format: str | None) -> str:
    return "RGB" if format in (None, "BGR", "YUV-BT.601") else format


def _is_reduced(mode: str, format: str | None) -> bool:
    """True when converting ``mode`` to ``format`` goes through ``_to_8_bit``."""
    return mode in _HIGH_BIT_DEPTH_MODES and _target_mode(format) not in _HIGH_BIT_DEPTH_MODES


def convert_PIL_to_numpy(image: Image.Image, format: str | None) -> np.ndarray:
    """Convert a PIL image to an HWC numpy array in ``format``.

    8-bit images convert exactly as in Detectron2 (PIL's ``convert``). Images with more than 8
    bits per channel (modes "I;16", "I", "F") are first scaled to 8 bits from their real range
    (see ``high_bit_depth_note``) where Detectron2 clips them, unless ``format`` asks for one of
    those modes itself.

    Args:
        image (Image.Image): any PIL mode (RGB, L, P, RGBA, CMYK, I;16, I, F...).
        format (str | None): "BGR", "RGB", "L", "YUV-BT.601" or another PIL mode. Defaults to
            RGB when None.

    Returns:
        np.ndarray[H, W, C]: uint8 (C is 1 for "L"); float64 for "YUV-BT.601" (Y in [0, 1]).
    """
    target = _target_mode(format)
    if _is_reduced(image.mode, format):
        image = _to_8_bit(image)
    if image.mode == "P" and target != "P":
        # Palette images may carry transparency; going through RGBA avoids PIL's warning.
        image = image.convert("RGBA")
    if image.mode != target:
        image = image.convert(target)
    array = np.array(image)  # writable, so torch can wrap it without a warning
    if array.ndim == 2:
        array = np.expand_dims(array, -1)
    if format == "BGR":
        array = array[:, :, ::-1]
    elif format == "YUV-BT.601":
        array = np.dot(array / 255.0, _M_RGB2YUV.T)
    return array


def convert_image_to_rgb(image: np.ndarray | torch.Tensor, format: str) -> np.ndarray:
    """Convert an HWC image in ``format`` (as ``read_image`` returns it) to RGB, for display.

    Args:
        image (np.ndarray | Tensor): ``[H, W, C]``.
        format (str): the image's format, e.g. ``cfg.INPUT.FORMAT``.

    Returns:
        np.ndarray[H, W, 3]: RGB in 0..255 (uint8, or float for "YUV-BT.601").
    """
    if isinstance(image, torch.Tensor):
        image = image.cpu().numpy()
    if format == "BGR":
        return image[:, :, [2, 1, 0]]
    if format == "YUV-BT.601":
        return np.dot(image, _M_YUV2RGB.T) * 255.0
    if format == "L":
        image = image[:, :, 0]
    image = image.astype(np.uint8)
    if format in ("RGB", "L"):
        return np.asarray(Image.fromarray(image).convert("RGB"))
    # Other PIL modes: reinterpret the bytes in that mode rather than guess from the shape.
    size = (image.shape[1], image.shape[0])
    return np.asarray(Image.frombytes(format, size, image.tobytes()).convert("RGB"))


def read_image(file_name: str, format: str | None = None) -> np.ndarray:
    """Read an image file, applying its EXIF orientation.

    Args:
        file_name (str): path to the image.
        format (str | None): "BGR", "RGB", "L", "YUV-BT.601" or another PIL mode. Defaults to
            None (RGB).

    Returns:
        np.ndarray[H, W, C]: uint8 image (C = 1 for "L", 3 for RGB/BGR). An image with more
        than 8 bits per channel is scaled to 8 bits (see ``convert_PIL_to_numpy``), with a
        warning naming the first such file of each mode.

    Raises:
        FileNotFoundError: if the file does not exist.
        OSError: if the file is not a readable image (e.g. truncated); the message names the path.
    """
    try:
        # PathManager also reads URLs and detectron2:// paths; a local path is a plain open().
        with PathManager.open(file_name, "rb") as f:
            image = Image.open(f)
            # Decode every pixel here, so that a truncated file fails now and names its path.
            image.load()
            # Phone photos store rotation in EXIF; without this, boxes drawn on the upright view
            # would not match the pixels.
            image = ImageOps.exif_transpose(image)
            if _is_reduced(image.mode, format) and image.mode not in _warned_modes:
                _warned_modes.add(image.mode)
                logger.warning(
                    f"{file_name}: mode {high_bit_depth_note(image.mode)}; other images of this "
                    "mode are converted the same way without a warning."
                )
            return convert_PIL_to_numpy(image, format)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"Image file not found: {file_name}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise OSError(f"Cannot read image file {file_name}: {e}") from e


def check_image_size(dataset_dict: dict, image: np.ndarray) -> None:
    """Check the image against the dict's ``height``/``width``, filling them in when missing.

    Raises:
        SizeMismatchError: (a ValueError) naming the file and both (width, height) sizes.
    """
    image_wh = (image.shape[1], image.shape[0])
    # A size the dict does not give is the image's own, so only the given ones are checked.
    expected_wh = (dataset_dict.get("width", image_wh[0]), dataset_dict.get("height", image_wh[1]))
    if image_wh != expected_wh:
        raise SizeMismatchError(
            f"Mismatched image shape for image {dataset_dict.get('file_name', '<unknown>')}: "
            f"got (width, height) = {image_wh}, expected {expected_wh} from the annotations. "
            f"Please check the width/height in your annotation."
        )
    dataset_dict.setdefault("width", image_wh[0])
    dataset_dict.setdefault("height", image_wh[1])


def find_paths_outside_root(paths: Sequence[str], image_root: str) -> list[int]:
    """Indices of the ``paths`` that resolve (symlinks followed) outside ``image_root``.

    A "../" or absolute ``file_name``, or a symlink out of the root, makes a dataset read files
    its author may not have meant; Detectron2 reads them, so callers warn. An empty root (file
    names are absolute by design) or a URL root has no outside.

    Args:
        paths (Sequence[str]): image paths, already joined to ``image_root``.
        image_root (str): the directory they should stay in.

    Returns:
        list[int]: positions in ``paths``, in order.
    """
    if not image_root or "://" in image_root:
        return []
    real_root = os.path.realpath(image_root)
    # Both sides are normalised real paths, so a prefix test is exact (and 10x faster than
    # os.path.commonpath); the separator keeps "root2/x" out of "root".
    prefix = real_root.rstrip(os.sep) + os.sep
    # Images share a few directories: resolving each directory once and testing only whether
    # the file itself is a link costs one lstat per image (COCO train: 118k of them).
    real_dirs: dict[str, str] = {}
    outside = []
    for i, path in enumerate(paths):
        directory, base = os.path.split(path)
        if directory not in real_dirs:
            real_dirs[directory] = os.path.realpath(directory)
        real = os.path.normpath(os.path.join(real_dirs[directory], base))
        if os.path.islink(real):
            real = os.path.realpath(real)
        if real != real_root and not real.startswith(prefix):
            outside.append(i)
    return outside
