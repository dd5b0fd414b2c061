"""Short alias of :mod:`d2lite.data.datasets.synthetic`: ``python -m d2lite.data.synthetic OUT``."""
from __future__ import annotations

from d2lite.data.datasets.synthetic import TRASH_CLASSES, generate_image, main, make_trash_dataset

__all__ = ["TRASH_CLASSES", "make_trash_dataset", "generate_image", "main"]

if __name__ == "__main__":
    main()
