"""Run Detectron2's own unit tests against d2lite through an import alias (not run by CI).

Given a Detectron2 source tree (``git archive`` of facebookresearch/detectron2), this copies its
``tests/`` into a scratch folder, makes every ``import detectron2.X`` resolve to ``d2lite.X``,
runs the in-scope test files with pytest and writes one JSON line per test with its outcome.

    python tools/dev/run_detectron2_tests.py --detectron2 /path/to/detectron2 --out d2lite.json

The same command run by a Python that has Detectron2 itself installed, with ``--backend
detectron2``, gives the reference outcomes on this machine; ``--compare REF.json`` then lists
the in-scope tests that Detectron2 passes and d2lite does not. See tests/README.md.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The Faster R-CNN scope of the compatibility issue, then the neighbouring files that exercise
# the same names (config, layers, box coding, poolers, the end-to-end model, the visualizer).
SCOPE_FILES = [
    "structures/test_boxes.py",
    "structures/test_imagelist.py",
    "structures/test_instances.py",
    "data/test_coco.py",
    "data/test_dataset.py",
    "data/test_detection_utils.py",
    "data/test_sampler.py",
    "data/test_transforms.py",
    "modeling/test_anchor_generator.py",
    "modeling/test_rpn.py",
    "modeling/test_roi_heads.py",
    "test_checkpoint.py",
    "test_engine.py",
    "test_events.py",
    "test_scheduler.py",
    "test_solver.py",
    "test_registry.py",
]
EXTRA_FILES = [
    "config/test_yacs_config.py",
    "data/test_coco_evaluation.py",
    "layers/test_losses.py",
    "layers/test_nms.py",
    "layers/test_roi_align.py",
    "layers/test_blocks.py",
    "modeling/test_box2box_transform.py",
    "modeling/test_fast_rcnn.py",
    "modeling/test_matcher.py",
    "modeling/test_roi_pooler.py",
    "modeling/test_backbone.py",
    "modeling/test_model_e2e.py",
    "test_model_zoo.py",
    "test_visualizer.py",
]

# Tests of features d2lite leaves out on purpose (README: "Not included"), matched on the test
# id: rotated boxes (RRPN, RROI), masks (polygons, RLE, mask configs), keypoints, semantic and
# panoptic segmentation, RetinaNet / FCOS, TorchScript / ONNX export and tracing, LazyConfig and
# instantiate, point_rend, depthwise-separable and ASPP blocks.
OUT_OF_SCOPE = re.compile(
    r"rotat|rrpn|rroi|mask|keypoint|polygon|sem_?seg|panoptic|retinanet|fcos|script|onnx|"
    r"trac(e|ing)|export|lazy|instantiate|point_?rend|caffe2|densepose|cityscapes|lvis|"
    r"deform|aspp|separable|omegaconf"
    r"|test_get_returns_model|test_get_url"  # both build / look up a Mask R-CNN config
    r"|test_schedule"  # instantiates a LazyConfig schedule file
    r"|test_grid_sample_equivalence"  # imports detectron2.projects.point_rend
    r"|test_default_anchor_generator_centered"  # ends with torch.jit.script
    r"|test_from_to_instances"  # TorchScript's patch_instances
    r"|test_setup_config"  # its second half sets up a LazyConfig (mask_rcnn_R_50_FPN_1x.py)
    r"|(?-i:RLE)",
    re.IGNORECASE,
)


# Tests that cannot pass through an import alias whatever d2lite does: they compare a class's
# dotted path with a literal "detectron2.…" string (under the alias it is "d2lite.…").
ALIAS_ARTIFACTS = re.compile(r"test_compress_target")


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``detectron2[.X]`` to the already-imported module ``d2lite[.X]``."""

    def __init__(self, shims: dict[str, str]) -> None:
        self.shims = shims

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "detectron2" and not fullname.startswith("detectron2."):
            return None
        if fullname in self.shims:
            # A shim stands for a package too (detectron2.export has submodules).
            return importlib.util.spec_from_file_location(
                fullname, self.shims[fullname], submodule_search_locations=[]
            )
        target_name = "d2lite" + fullname[len("detectron2") :]
        try:
            module = importlib.import_module(target_name)
        except ModuleNotFoundError as e:
            if e.name is not None and (e.name == target_name or target_name.startswith(e.name + ".")):
                return None
            raise
        spec = importlib.util.spec_from_loader(fullname, self, is_package=hasattr(module, "__path__"))
        spec.loader_state = module
        return spec

    def create_module(self, spec):
        return spec.loader_state

    def exec_module(self, module):
        # The import system stamped the alias spec on the d2lite module; give it its own back.
        module.__spec__ = importlib.util.find_spec(module.__name__) or module.__spec__


def _alias_logger_names() -> None:
    """Tests capture loggers by their Detectron2 names (``assertLogs("detectron2.utils.events")``):
    under the alias those names mean the d2lite loggers, as ``__name__`` would after a real prefix
    change."""
    get_logger = logging.getLogger

    def getLogger(name=None):
        if name is not None and (name == "detectron2" or name.startswith("detectron2.")):
            name = "d2lite" + name[len("detectron2") :]
        return get_logger(name)

    logging.getLogger = getLogger


def install_alias() -> None:
    # Detectron2's test helpers, and its export package (TorchScript / ONNX, which d2lite does
    # not have) that several in-scope test files import at the top for one or two tests.
    shims = {
        "detectron2.utils.testing": str(HERE / "d2_testing_shim.py"),
        "detectron2.export": str(HERE / "d2_export_shim.py"),
        "detectron2.export.torchscript": str(HERE / "d2_export_shim.py"),
        "detectron2.export.torchscript_patch": str(HERE / "d2_export_shim.py"),
        # PointRend (a mask head) is imported at the top of test_roi_heads for one test.
        "detectron2.projects": str(HERE / "d2_export_shim.py"),
        "detectron2.projects.point_rend": str(HERE / "d2_export_shim.py"),
    }
    sys.meta_path.insert(0, _AliasFinder(shims))
    _alias_logger_names()


class _Recorder:
    """A pytest plugin that keeps one outcome per test id."""

    def __init__(self) -> None:
        self.results: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report):
        entry = self.results.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["message"] = _short(report)
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
            entry["message"] = _short(report)

    def pytest_collectreport(self, report):
        if report.failed:
            self.results[report.nodeid] = {"outcome": "error", "message": _short(report)}


def _short(report) -> str:
    text = str(report.longrepr) if report.longrepr is not None else ""
    lines = [ln for ln in text.splitlines() if ln.startswith("E ") or "Error" in ln]
    return (lines[-1] if lines else text.splitlines()[-1] if text else "")[:300]


def _in_scope(nodeid: str, files: list[str]) -> bool:
    if OUT_OF_SCOPE.search(nodeid) or ALIAS_ARTIFACTS.search(nodeid):
        return False
    return any(nodeid.startswith(f"tests/{f}") for f in files)


def run(args) -> dict[str, dict]:
    import pytest

    work = Path(tempfile.mkdtemp(prefix="d2tests_"))
    shutil.copytree(Path(args.detectron2) / "tests", work / "tests")
    (work / "pytest.ini").write_text("[pytest]\n")
    if args.backend == "d2lite":
        install_alias()
    files = SCOPE_FILES + (EXTRA_FILES if args.extra else [])
    targets = [str(work / "tests" / f) for f in files if (work / "tests" / f).exists()]
    recorder = _Recorder()
    os.chdir(work)
    extra = ["-k", args.k] if args.k else []
    pytest.main(
        ["-q", "-p", "no:cacheprovider", "--rootdir", str(work), "--continue-on-collection-errors",
         *extra, *targets],
        plugins=[recorder],
    )
    return recorder.results


def summarise(results: dict[str, dict], files: list[str], reference: dict | None) -> str:
    lines = []
    scoped = {k: v for k, v in results.items() if _in_scope(k, files)}
    count = {o: sum(v["outcome"] == o for v in scoped.values()) for o in ("passed", "failed", "error", "skipped")}
    lines.append(f"in scope: {len(scoped)} tests: " + ", ".join(f"{n} {o}" for o, n in count.items()))
    if reference is not None:
        # Tests deselected by -k are neither run nor collected: leave them out of the count.
        ran = {k for k in reference if k in results or k.split("::")[0] in results}
        ref_pass = {
            k for k in ran if reference[k]["outcome"] == "passed" and _in_scope(k, files)
        }
        ours = {k for k, v in scoped.items() if v["outcome"] == "passed"}
        lines.append(f"Detectron2 passes {len(ref_pass)} of them here; d2lite passes {len(ref_pass & ours)} of those")
        for k in sorted(ref_pass - ours):
            got = results.get(k, {"outcome": "missing", "message": ""})
            lines.append(f"  {got['outcome']:8} {k}  {got['message']}")
    else:
        for k, v in sorted(scoped.items()):
            if v["outcome"] in ("failed", "error"):
                lines.append(f"  {v['outcome']:8} {k}  {v['message']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectron2", required=True, help="a Detectron2 source tree (has tests/)")
    parser.add_argument("--backend", choices=["d2lite", "detectron2"], default="d2lite")
    parser.add_argument("--extra", action="store_true", help="also run the neighbouring files")
    parser.add_argument("--out", help="write {test id: outcome} as JSON here")
    parser.add_argument("--compare", help="a JSON written with --backend detectron2")
    parser.add_argument("-k", help="pytest -k expression")
    args = parser.parse_args()
    args.detectron2 = os.path.abspath(args.detectron2)
    out = os.path.abspath(args.out) if args.out else None
    reference = json.loads(Path(args.compare).read_text()) if args.compare else None
    results = run(args)
    if out:
        Path(out).write_text(json.dumps(results, indent=1, sort_keys=True))
    files = SCOPE_FILES + (EXTRA_FILES if args.extra else [])
    print(summarise(results, files, reference))


if __name__ == "__main__":
    main()
