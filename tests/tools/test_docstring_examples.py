"""The command lines in the docstrings of tools/train_net.py and tools/plain_train_net.py run
as written, from a fresh directory that has only the repository's model_zoo/ in it."""
from __future__ import annotations

import ast
import json
import shlex

import pytest

from d2lite.data import DatasetCatalog, MetadataCatalog
from d2lite.extras.synthetic import main as make_trash_main


def _examples(path) -> list[list[str]]:
    """Each ``python tools/X.py ...`` line of the module docstring (continuations joined)."""
    doc = ast.get_docstring(ast.parse(path.read_text()))
    text = doc.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("python tools/"):
            commands.append(shlex.split(line)[1:])
    return commands


@pytest.fixture
def fresh_dir(tmp_path, repo, monkeypatch):
    (tmp_path / "model_zoo").symlink_to(repo / "model_zoo")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in ("train", "val"):
        if name in DatasetCatalog:
            DatasetCatalog.remove(name)
        if name in MetadataCatalog:
            MetadataCatalog.remove(name)


def _run(command: list[str], load_tool) -> None:
    script, argv = command[0], command[1:]
    if script == "tools/make_trash_dataset.py":
        make_trash_main(argv)
        return
    tool = load_tool(script.removeprefix("tools/").removesuffix(".py"))
    tool.invoke_main(argv)


def test_train_net_examples_train_then_evaluate(fresh_dir, repo, load_tool):
    commands = _examples(repo / "tools" / "train_net.py")
    # The last one needs two processes and a cfg.yaml of the reader's own.
    runnable = [c for c in commands if "cfg.yaml" not in c]
    assert [c[0] for c in runnable] == ["tools/make_trash_dataset.py"] + ["tools/train_net.py"] * 2
    for command in runnable:
        _run(command, load_tool)
    out = fresh_dir / "output" / "tiny"
    assert (out / "model_final.pth").is_file() and (out / "config.yaml").is_file()
    metrics = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert max(m["iteration"] for m in metrics if "total_loss" in m) == 19  # SOLVER.MAX_ITER 20
    assert (out / "inference" / "coco_instances_results.json").is_file()


def test_plain_train_net_example_trains(fresh_dir, repo, load_tool):
    commands = _examples(repo / "tools" / "plain_train_net.py")
    assert [c[0] for c in commands] == ["tools/make_trash_dataset.py", "tools/plain_train_net.py"]
    for command in commands:
        _run(command, load_tool)
    assert (fresh_dir / "output" / "plain_tiny" / "model_final.pth").is_file()
