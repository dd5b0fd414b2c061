"""``import d2lite`` registers every built-in part, with no register_all_modules() step; the
package (a wheel, its metadata, a non-editable install) carries the configs and the command."""
from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import d2lite

REPO = Path(__file__).resolve().parents[1]


def test_import_registers_every_builtin_part():
    code = (
        "import d2lite\n"
        "from d2lite.modeling import BACKBONE_REGISTRY, META_ARCH_REGISTRY, ROI_HEADS_REGISTRY\n"
        "from d2lite.data import DatasetCatalog\n"
        "assert {'build_resnet_backbone', 'build_resnet_fpn_backbone', 'TinyBackbone'} <= set(BACKBONE_REGISTRY._obj_map)\n"
        "assert {'GeneralizedRCNN', 'ProposalNetwork'} <= set(META_ARCH_REGISTRY._obj_map)\n"
        "assert {'StandardROIHeads', 'Res5ROIHeads'} <= set(ROI_HEADS_REGISTRY._obj_map)\n"
        "assert {'coco_2017_train', 'coco_2017_val'} <= set(DatasetCatalog.list())\n"
        "assert not [n for n in DatasetCatalog.list() if n.startswith('coco_trash')]\n"
    )
    # -W error: importing d2lite must not print deprecation noise (e.g. from fvcore.nn's TorchScript).
    out = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr



def _wheel(tmp_path: Path) -> Path:
    """Builds d2lite's wheel from a copy of the sources (the checkout stays untouched)."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("d2lite", "model_zoo"):
        shutil.copytree(REPO / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    # No build isolation, so nothing is downloaded: the venv's setuptools builds the wheel
    # (torch 2.14 requires setuptools>=77, the first that reads pyproject's SPDX license).
    if int(importlib.metadata.version("setuptools").split(".")[0]) < 77:
        pytest.skip("this venv's setuptools is older than 77 (pyproject.toml's build requirement)")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    cmd += ["-w", str(tmp_path / "dist"), str(src)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    (wheel,) = (tmp_path / "dist").glob("d2lite-*.whl")
    return wheel


def test_the_wheel_has_the_metadata_configs_and_command(tmp_path):
    with zipfile.ZipFile(_wheel(tmp_path)) as z:
        names = set(z.namelist())
        info = f"d2lite-{d2lite.__version__}.dist-info"
        meta = z.read(f"{info}/METADATA").decode()
        entry_points = z.read(f"{info}/entry_points.txt").decode()
    zoo = REPO / "model_zoo"
    shipped = {f"d2lite/model_zoo/configs/{p.relative_to(zoo)}" for p in zoo.rglob("*.yaml")}
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "d2lite/py.typed" in names and f"{info}/licenses/LICENSE" in names
    assert not any(n.startswith(("tests/", "tools/")) for n in names)
    assert "d2lite = d2lite.cli:main" in entry_points
    assert "License-Expression: Apache-2.0" in meta and "Requires-Python: >=3.10" in meta
    prefix = "Requires-Dist: "
    requires = {line[len(prefix) :] for line in meta.splitlines() if line.startswith(prefix)}
    assert {"torch>=2.1", "torchvision>=0.16", 'pytest>=7; extra == "test"'} <= requires
    assert all(">=" in r for r in requires), "every dependency has a lower bound"


def test_a_non_editable_install_runs_from_outside_the_repository(tmp_path):
    site = tmp_path / "site"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target"]
    out = subprocess.run(cmd + [str(site), str(_wheel(tmp_path))], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "d2lite.cli" in (site / "bin" / "d2lite").read_text()
    # -S: no .pth files, so the checkout's editable install cannot answer "import d2lite".
    code = (
        f"import sys; sys.path[:0] = [{str(site)!r}, {sysconfig.get_paths()['purelib']!r}]\n"
        "import d2lite, d2lite.cli\n"
        "from d2lite import model_zoo\n"
        f"assert d2lite.__file__.startswith({str(site)!r}), d2lite.__file__\n"
        "path = model_zoo.get_config_file('tiny/faster_rcnn_tiny.yaml')\n"
        f"assert path.startswith({str(site)!r}), path\n"
        "cfg = model_zoo.get_config('Trash-Demo/faster_rcnn_R_18_FPN_trash_cpu.yaml')\n"
        "assert cfg.MODEL.RESNETS.DEPTH == 18 and cfg.MODEL.ROI_HEADS.NUM_CLASSES == 10\n"
        "print(len(model_zoo.list_configs()))\n"
        "d2lite.cli.main(['--version'])\n"
    )
    cmd = [sys.executable, "-S", "-c", code]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    count, version = out.stdout.splitlines()
    assert int(count) == len(list((REPO / "model_zoo").rglob("*.yaml")))
    assert version == f"d2lite {d2lite.__version__}"
