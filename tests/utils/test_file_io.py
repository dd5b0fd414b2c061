"""Tests for the output-path helpers of d2lite/utils/file_io.py."""
from __future__ import annotations

import logging
import os

import pytest

from d2lite.utils.file_io import atomic_output, safe_output_path


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_a_name_inside_keeps_its_layout(out, caplog):
    with caplog.at_level(logging.WARNING):
        assert safe_output_path(str(out), "test/0000.jpg") == str(out / "test" / "0000.jpg")
        assert safe_output_path(str(out), "./a//b/../c.jpg") == str(out / "a" / "c.jpg")
    assert caplog.records == []


@pytest.mark.parametrize(
    "name, kept",
    [
        ("../../victim.jpg", "victim.jpg"),
        ("sub/../../victim.jpg", "victim.jpg"),
        ("a/../../../b/victim.jpg", "b/victim.jpg"),
        ("/tmp/x/victim.jpg", "tmp/x/victim.jpg"),
    ],
)
def test_names_climbing_out_are_confined_with_a_warning(out, caplog, name, kept):
    with caplog.at_level(logging.WARNING, logger="d2lite.utils.file_io"):
        path = safe_output_path(str(out), name, source="data.json")
    assert path == os.path.join(str(out), *kept.split("/"))
    assert name in caplog.text and "data.json" in caplog.text


@pytest.mark.parametrize("name", ["", ".", "..", "/", "a/.."])
def test_a_name_without_a_file_is_refused(out, name):
    with pytest.raises(ValueError, match="names no file"):
        safe_output_path(str(out), name)


def test_a_symlinked_subfolder_pointing_outside_is_refused(out, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "test").symlink_to(elsewhere)
    with pytest.raises(ValueError, match="test/0000.jpg.*symlink"):
        safe_output_path(str(out), "test/0000.jpg")


def test_a_symlink_at_the_destination_pointing_outside_is_refused(out, tmp_path):
    victim = tmp_path / "victim.jpg"
    victim.write_bytes(b"precious")
    (out / "0000.jpg").symlink_to(victim)
    with pytest.raises(ValueError, match="0000.jpg"):
        safe_output_path(str(out), "0000.jpg")
    (out / "dangling.jpg").symlink_to(tmp_path / "not_yet.jpg")
    with pytest.raises(ValueError, match="dangling.jpg"):
        safe_output_path(str(out), "dangling.jpg")


def test_symlinks_that_stay_inside_are_allowed(out, tmp_path):
    (out / "real").mkdir()
    (out / "alias").symlink_to(out / "real")
    assert safe_output_path(str(out), "alias/x.jpg") == str(out / "alias" / "x.jpg")
    # The output folder itself may be a symlink, e.g. to a bigger disk.
    link = tmp_path / "link_to_out"
    link.symlink_to(out)
    assert safe_output_path(str(link), "x.jpg") == str(link / "x.jpg")


def test_atomic_output_replaces_the_file_only_when_complete(tmp_path):
    path = tmp_path / "sub" / "submission.csv"
    with atomic_output(str(path)) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path / "sub") and tmp.endswith(".csv")
        with open(tmp, "w") as f:
            f.write("old\n")
    assert path.read_text() == "old\n"
    with pytest.raises(OSError, match="disk full"):
        with atomic_output(str(path)) as tmp:
            with open(tmp, "w") as f:
                f.write("PredictionString,image_id\n")
            raise OSError("disk full")
    assert path.read_text() == "old\n", "a failed write leaves the previous file"
    assert os.listdir(path.parent) == ["submission.csv"], "no temporary file is left"


def test_atomic_output_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.csv"
    victim.write_text("precious")
    link = tmp_path / "submission.csv"
    link.symlink_to(victim)
    with atomic_output(str(link)) as tmp:
        with open(tmp, "w") as f:
            f.write("new")
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "new"
