"""Installs d2lite; nothing is compiled (every kernel comes from torchvision.ops)."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent

setup(
    name="d2lite",
    version="0.1.0",
    description="A small, Detectron2-compatible Faster R-CNN training library",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["d2lite", "d2lite.*"]) + ["d2lite.model_zoo.configs"],
    # The YAML configs live at the top-level model_zoo/ and install as d2lite/model_zoo/configs.
    package_dir={"d2lite.model_zoo.configs": "model_zoo"},
    package_data={"d2lite.model_zoo.configs": ["*.yaml", "*/*.yaml", "*/*/*.yaml", "*/*/*/*.yaml"]},
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "fvcore>=0.1.5",
        "iopath>=0.1.9",
        "pycocotools>=2.0.2",
        "yacs>=0.1.8",
        "tensorboard",
        "tqdm",
        "cloudpickle",
        "numpy",
        "Pillow",
        "matplotlib",
    ],
    extras_require={"test": ["pytest"]},
)
