"""tools/train_net.py and tools/plain_train_net.py with ``--dataset``: the setup that
``d2lite train`` runs, through the Detectron2-style scripts."""
from __future__ import annotations

import pytest
import yaml

from d2lite.data import DatasetCatalog, MetadataCatalog
from d2lite.model_zoo import get_config_file


@pytest.mark.parametrize("tool", ["train_net", "plain_train_net"])
def test_dataset_flag_registers_trains_and_evaluates(tool, trash_dir, tmp_path, load_tool):
    module = load_tool(tool)
    out = tmp_path / "out"
    argv = [
        "--config-file", get_config_file("tiny/faster_rcnn_tiny.yaml"),
        "--dataset", f"tools_own_train={trash_dir / 'train.json'}",
        "--dataset", f"tools_own_val={trash_dir / 'val.json'}:{trash_dir}",
        "SOLVER.MAX_ITER", "2", "MODEL.ROI_HEADS.NUM_CLASSES", "10", "OUTPUT_DIR", str(out),
    ]  # fmt: skip
    try:
        results = module.main(module.get_parser().parse_args(argv))
        assert MetadataCatalog.get("tools_own_val").thing_classes[-1] == "Clothing"
    finally:
        for name in ("tools_own_train", "tools_own_val"):
            DatasetCatalog.pop(name, None)
            MetadataCatalog.pop(name, None)
    assert "AP" in results["bbox"]
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["DATASETS"]["TRAIN"] == ["tools_own_train"]
    assert saved["DATASETS"]["TEST"] == ["tools_own_val"]
    registered = [entry[0] for entry in saved["DATASETS"]["COCO_REGISTER"]]
    assert registered == ["tools_own_train", "tools_own_val"]
    assert (out / "model_final.pth").is_file()


def test_a_malformed_dataset_flag_is_a_usage_error(load_tool, capsys):
    parser = load_tool("train_net").get_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--dataset", "train.json:images"])
    assert exc.value.code == 2 and "expected NAME=JSON_FILE[:IMAGE_ROOT]" in capsys.readouterr().err
