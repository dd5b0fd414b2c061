"""Read image files into HWC arrays in the format a model expects, and check their size.

``detection_utils`` re-exports these under Detectron2's names (``detection_utils.read_image``).
"""

from __future__ import annotations

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
]

# RGB <-> YUV (ITU-R BT.601), for image_format "YUV-BT.601".
_M_RGB2YUV = np.array(
    [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]]
)
_M_YUV2RGB = np.array([[1.0, 0.0, 1.13983], [1.0, -0.39465, -0.58060], [1.0, 2.03211, 0.0]])


class SizeMismatchError(ValueError):
    """An image's real size differs from the height/width its dataset dict claims."""


def convert_PIL_to_numpy(image: Image.Image, format: str | None) -> np.ndarray:
    """Convert a PIL image to an HWC numpy array in ``format``.

    Args:
        image (Image.Image): any PIL mode (RGB, L, P, RGBA, CMYK...).
        format (str | None): "BGR", "RGB", "L", "YUV-BT.601" or another PIL mode. Defaults to
            RGB when None.

    Returns:
        np.ndarray[H, W, C]: uint8 (C is 1 for "L"); float64 for "YUV-BT.601" (Y in [0, 1]).
    """
    target = "RGB" if format in (None, "BGR", "YUV-BT.601") else format
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
        np.ndarray[H, W, C]: uint8 image (C = 1 for "L", 3 for RGB/BGR).

    Raises:
        FileNotFoundError: if the file does not exist.
        OSError: if the file is not a readable image; the message names the path.
    """
    try:
        # PathManager also reads URLs and detectron2:// paths; a local path is a plain open().
        with PathManager.open(file_name, "rb") as f:
            image = Image.open(f)
            # Phone photos store rotation in EXIF; without this, boxes drawn on the upright view
            # would not match the pixels.
            image = ImageOps.exif_transpose(image)
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
    if "width" in dataset_dict or "height" in dataset_dict:
        expected_wh = (
            dataset_dict.get("width", image_wh[0]),
            dataset_dict.get("height", image_wh[1]),
        )
        if image_wh != expected_wh:
            raise SizeMismatchError(
                f"Mismatched image shape for image {dataset_dict.get('file_name', '<unknown>')}: "
                f"got (width, height) = {image_wh}, expected {expected_wh} from the annotations. "
                f"Please check the width/height in your annotation."
            )
    dataset_dict.setdefault("width", image_wh[0])
    dataset_dict.setdefault("height", image_wh[1])
