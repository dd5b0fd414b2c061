"""Tests for tools/visualize_data.py."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def test_to_rgb_converts_channel_order(load_tool):
    vis = load_tool("visualize_data")
    chw = np.zeros((3, 2, 4), dtype=np.float32)
    chw[0] = 10  # B in BGR
    chw[2] = 250.7  # R in BGR
    rgb = vis.to_rgb(chw, "BGR")
    assert rgb.shape == (2, 4, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (250, 0, 10)
    assert tuple(vis.to_rgb(chw, "RGB")[0, 0]) == (10, 0, 250)


def test_annotation_source_draws_ground_truth(trash_dir, tiny_config, tmp_path, load_tool):
    vis = load_tool("visualize_data")
    out = tmp_path / "gt"
    written = vis.main(
        ["--config-file", str(tiny_config), "--source", "annotation", "--output", str(out)]
        + ["--num", "4"]
    )
    assert [p.rsplit("/", 1)[1] for p in written] == [f"000{i}.png" for i in range(4)]
    drawn = np.asarray(Image.open(written[0]))
    original = np.asarray(Image.open(trash_dir / "train/0000.jpg"))
    assert drawn.shape == original.shape
    assert (np.abs(drawn.astype(int) - original).max(axis=2) > 60).any(), "boxes were drawn"


def test_dataloader_source_draws_mapped_images(tiny_config, tmp_path, load_tool):
    vis = load_tool("visualize_data")
    out = tmp_path / "loader"
    written = vis.main(
        ["--config-file", str(tiny_config), "--source", "dataloader", "--output", str(out)]
        + ["--num", "3", "DATALOADER.NUM_WORKERS", "0", "INPUT.MIN_SIZE_TRAIN", "(80,)"]
    )
    assert len(written) == 3 and len(set(written)) == 3
    for path in written:
        with Image.open(path) as img:
            assert img.size == (80, 80), "images are drawn after the mapper's resize"


def test_empty_train_datasets_is_an_error(tiny_config, tmp_path, load_tool):
    vis = load_tool("visualize_data")
    with pytest.raises(ValueError, match="DATASETS.TRAIN is empty"):
        vis.main(
            ["--config-file", str(tiny_config), "--source", "annotation"]
            + ["--output", str(tmp_path), "DATASETS.TRAIN", "()"]
        )


def test_a_symlinked_picture_pointing_outside_is_refused(tiny_config, tmp_path, load_tool):
    vis = load_tool("visualize_data")
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    out = tmp_path / "gt"
    out.mkdir()
    (out / "0000.png").symlink_to(victim)
    with pytest.raises(ValueError, match="0000.png.*train/0000.jpg"):
        vis.main(
            ["--config-file", str(tiny_config), "--source", "annotation", "--output", str(out)]
            + ["--num", "1"]
        )
    assert victim.read_bytes() == b"precious"
