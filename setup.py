"""The one thing pyproject.toml cannot say: model_zoo/ installs as d2lite/model_zoo/configs.

Every other piece of metadata is in pyproject.toml. setuptools' ``packages.find`` finds
packages only where they lie, so the package list and the folder mapping are given here.
"""
from pathlib import Path

from setuptools import find_packages, setup

ZOO = Path(__file__).parent / "model_zoo"
# Each config folder is listed as a (data-only) package under the mapped root; setuptools warns
# about folders that hold package data without being listed.
CONFIG_PACKAGES = ["d2lite.model_zoo.configs"] + [
    "d2lite.model_zoo.configs." + ".".join(p.relative_to(ZOO).parts)
    for p in sorted(ZOO.rglob("*"))
    if p.is_dir() and not p.name.startswith(".") and p.name != "__pycache__"
]

setup(
    packages=find_packages(include=["d2lite", "d2lite.*"]) + CONFIG_PACKAGES,
    package_dir={"d2lite.model_zoo.configs": "model_zoo"},
    # Here, not in pyproject.toml: a [tool.setuptools.package-data] table there replaces this.
    package_data={"d2lite": ["py.typed"], **{name: ["*.yaml", "*.md"] for name in CONFIG_PACKAGES}},
)
