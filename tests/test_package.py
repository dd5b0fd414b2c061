"""``import d2lite`` registers every built-in part, with no register_all_modules() step."""
from __future__ import annotations

import subprocess
import sys


def test_import_registers_every_builtin_part():
    code = (
        "import d2lite\n"
        "from d2lite.modeling import BACKBONE_REGISTRY, META_ARCH_REGISTRY, ROI_HEADS_REGISTRY\n"
        "from d2lite.data import DatasetCatalog\n"
        "assert {'build_resnet_backbone', 'build_resnet_fpn_backbone', 'TinyBackbone'} <= set(BACKBONE_REGISTRY._obj_map)\n"
        "assert {'GeneralizedRCNN', 'ProposalNetwork'} <= set(META_ARCH_REGISTRY._obj_map)\n"
        "assert {'StandardROIHeads', 'Res5ROIHeads'} <= set(ROI_HEADS_REGISTRY._obj_map)\n"
        "assert {'coco_trash_train', 'coco_trash_val', 'coco_trash_test', 'coco_2017_train'} <= set(DatasetCatalog.list())\n"
    )
    # -W error: importing d2lite must not print deprecation noise (e.g. from fvcore.nn's TorchScript).
    out = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
