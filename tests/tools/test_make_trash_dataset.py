"""Tests for tools/make_trash_dataset.py (the generator itself: tests/data/test_synthetic.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--train", "2", "--val", "1", "--test", "1", "--size", "64", "--seed", "5"]


def _check_layout(root: Path) -> None:
    val = json.loads((root / "val.json").read_text())
    assert val["images"][0]["file_name"] == "val/0000.jpg"
    assert len(list((root / "train").glob("*.jpg"))) == 2
    assert json.loads((root / "test.json").read_text())["annotations"] == []


def test_tool_script_writes_the_dataset(tmp_path):
    tool = REPO / "tools" / "make_trash_dataset.py"
    subprocess.run([sys.executable, str(tool), str(tmp_path), *ARGS], check=True, cwd=REPO)
    _check_layout(tmp_path)


def test_python_dash_m_module_writes_the_same_files(tmp_path):
    module = [sys.executable, "-m", "d2lite.extras.synthetic", str(tmp_path / "a"), *ARGS]
    subprocess.run(module, check=True, cwd=REPO)
    _check_layout(tmp_path / "a")
    # `d2lite make-trash` runs the same code.
    from d2lite.cli import main

    main(["make-trash", str(tmp_path / "b"), *ARGS])
    assert (tmp_path / "a/train.json").read_bytes() == (tmp_path / "b/train.json").read_bytes()


def test_bad_arguments_exit_with_usage(tmp_path, capsys):
    from d2lite.extras.synthetic import main

    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), "--train", "x"])
    assert exc.value.code == 2 and "invalid int value" in capsys.readouterr().err
