from __future__ import annotations

import json
import logging
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from d2lite.config import get_cfg
from d2lite.engine import (
    DefaultPredictor,
    DefaultTrainer,
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
)
from d2lite.engine.writers import TrainingCurvesWriter
from d2lite.model_zoo import get_config_file
from d2lite.structures import Boxes, Instances
from d2lite.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter


def tiny_cfg(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file("tiny/faster_rcnn_tiny.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.OUTPUT_DIR = str(tmp_path / "out")
    cfg.SOLVER.MAX_ITER = 3
    cfg.SOLVER.WARMUP_ITERS = 1
    cfg.SOLVER.CHECKPOINT_PERIOD = 100
    return cfg


def _toy_batches():
    """Two images of different sizes, the second without boxes, as the mapper outputs them."""
    gen = torch.Generator().manual_seed(0)
    while True:
        batch = []
        for (h, w), n in [((64, 80), 2), ((72, 64), 0)]:
            inst = Instances((h, w))
            inst.gt_boxes = Boxes(
                torch.tensor([[5.0, 5.0, 30.0, 30.0], [20.0, 10.0, 60.0, 50.0]])[:n]
            )
            inst.gt_classes = torch.tensor([0, 1])[:n]
            image = torch.randint(0, 255, (3, h, w), dtype=torch.uint8, generator=gen)
            batch.append({"image": image, "instances": inst, "height": h, "width": w})
        yield batch


class ToyDataTrainer(DefaultTrainer):
    @classmethod
    def build_train_loader(cls, cfg):
        return _toy_batches()


class CocoTrainer(DefaultTrainer):
    """What a user adds to evaluate, as Detectron2's tools/train_net.py does."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name):
        from d2lite.evaluation import COCOEvaluator

        return COCOEvaluator(dataset_name, output_dir=os.path.join(cfg.OUTPUT_DIR, "inference"))


def test_argument_parser():
    args = default_argument_parser().parse_args(
        ["--config-file", "a.yaml", "--resume", "--num-gpus", "2", "SOLVER.BASE_LR", "0.1"]
    )
    assert args.config_file == "a.yaml" and args.resume and not args.eval_only
    assert args.num_gpus == 2 and args.num_machines == 1 and args.machine_rank == 0
    assert args.opts == ["SOLVER.BASE_LR", "0.1"]
    assert args.dist_url.startswith("tcp://127.0.0.1:")
    args = default_argument_parser().parse_args(["--eval-only"])
    assert args.eval_only and args.opts == [] and args.config_file == ""


def test_auto_scale_workers():
    cfg = get_cfg()
    cfg.SOLVER.REFERENCE_WORLD_SIZE = 0
    assert DefaultTrainer.auto_scale_workers(cfg, 4) is cfg
    cfg.SOLVER.REFERENCE_WORLD_SIZE = 8
    cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER = 16, 0.02, 1000
    cfg.SOLVER.STEPS, cfg.TEST.EVAL_PERIOD = (600, 800), 100
    cfg.freeze()
    new = DefaultTrainer.auto_scale_workers(cfg, 4)
    assert new.is_frozen() and cfg.SOLVER.IMS_PER_BATCH == 16
    assert new.SOLVER.IMS_PER_BATCH == 8 and new.SOLVER.BASE_LR == pytest.approx(0.01)
    assert new.SOLVER.MAX_ITER == 2000 and new.SOLVER.STEPS == (1200, 1600)
    assert new.TEST.EVAL_PERIOD == 200 and new.SOLVER.REFERENCE_WORLD_SIZE == 4
    bad = get_cfg()
    bad.SOLVER.REFERENCE_WORLD_SIZE, bad.SOLVER.IMS_PER_BATCH = 3, 16
    with pytest.raises(ValueError, match="IMS_PER_BATCH=16"):
        DefaultTrainer.auto_scale_workers(bad, 2)


def test_default_setup_saves_config_and_log(tmp_path):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path / "run")
    cfg.SEED = 5
    args = default_argument_parser().parse_args([])
    default_setup(cfg, args)
    saved = get_cfg()
    saved.merge_from_file(str(tmp_path / "run" / "config.yaml"))
    assert saved.SEED == 5
    assert "Environment info" in (tmp_path / "run" / "log.txt").read_text()
    first = torch.rand(1)
    default_setup(cfg, args)
    assert torch.equal(torch.rand(1), first)


def test_default_writers_and_single_process_ddp(tmp_path):
    writers = default_writers(str(tmp_path), 10)
    # Not a terminal (pytest captures stdout): Detectron2's printer, then training_curves.png.
    assert [type(w) for w in writers] == [
        CommonMetricPrinter,
        JSONWriter,
        TensorboardXWriter,
        TrainingCurvesWriter,
    ]
    model = torch.nn.Linear(2, 2)
    assert create_ddp_model(model) is model


def test_default_trainer_trains_tiny_model_and_resumes(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.SOLVER.MAX_ITER = 2
    trainer = ToyDataTrainer(cfg)
    trainer.resume_or_load(resume=False)
    # As Detectron2's, train() returns results only with TEST.EXPECTED_RESULTS; the final
    # evaluation (no test dataset: no results) is still kept.
    assert trainer.train() is None
    assert trainer._last_eval_results == {}
    lines = [json.loads(x) for x in open(os.path.join(cfg.OUTPUT_DIR, "metrics.json"))]
    assert lines[-1]["iteration"] == 1
    for key in ("total_loss", "loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc", "lr"):
        assert np.isfinite(lines[-1][key]), key
    assert os.path.exists(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))

    cfg.SOLVER.MAX_ITER = 3
    resumed = ToyDataTrainer(cfg)
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 2
    assert resumed.scheduler.last_epoch == 2  # the LR schedule resumed too
    resumed.train()
    assert resumed.iter == 3


def test_default_trainer_reports_typo_config_key(tmp_path, caplog, monkeypatch):
    cfg = tiny_cfg(tmp_path)
    cfg.SOLVER.MAX_ITERS = 10
    with pytest.raises(KeyError, match="SOLVER.MAX_ITERS"):
        with monkeypatch.context() as m:
            m.setenv("D2LITE_STRICT_CONFIG", "1")
            ToyDataTrainer(cfg)
    monkeypatch.delenv("D2LITE_STRICT_CONFIG", raising=False)
    ToyDataTrainer(cfg)
    assert "SOLVER.MAX_ITERS Did you mean SOLVER.MAX_ITER?" in caplog.text


def test_build_evaluator_is_not_implemented_as_in_detectron2(tmp_path):
    # The COCO default, and the clear error for other evaluator types, moved to
    # tools/train_net.py's Trainer (tests/engine/test_train_net.py checks them).
    with pytest.raises(NotImplementedError, match="build_evaluator"):
        DefaultTrainer.build_evaluator(get_cfg(), "coco_trash_val")


def test_test_checks_evaluator_count(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.DATASETS.TEST = ("a", "b")
    with pytest.raises(ValueError, match="1 evaluators given for 2 datasets"):
        DefaultTrainer.test(cfg, torch.nn.Linear(1, 1), evaluators=[object()])


def test_default_predictor_returns_original_coordinates(tmp_path):
    cfg = tiny_cfg(tmp_path)
    predictor = DefaultPredictor(cfg)
    image = np.random.default_rng(0).integers(0, 255, (100, 150, 3), dtype=np.uint8)
    instances = predictor(image)["instances"]
    assert instances.image_size == (100, 150)
    boxes = instances.pred_boxes.tensor
    assert len(boxes) > 0
    assert boxes[:, 2].max() <= 150 and boxes[:, 3].max() <= 100
    # The model saw the 64-pixel resize, yet boxes extend past it: they were scaled back.
    assert boxes[:, 2].max() > 64
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        predictor(torch.zeros(3, 10, 10))


def test_default_predictor_resizes_and_flips_rgb(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.INPUT.FORMAT = "RGB"
    predictor = DefaultPredictor(cfg)
    seen = []
    predictor.model = lambda inputs: seen.extend(inputs) or [{"instances": None}]
    image = np.zeros((100, 150, 3), dtype=np.uint8)
    image[..., 0] = 200  # blue in BGR
    predictor(image)
    assert seen[0]["height"] == 100 and seen[0]["width"] == 150
    assert tuple(seen[0]["image"].shape) == (3, 64, 96)
    assert seen[0]["image"][2].min() == 200 and seen[0]["image"][0].max() == 0


def test_default_trainer_on_synthetic_data_with_eval_and_validation(tmp_path, trash_datasets):
    from d2lite.extras.synthetic import TRASH_CLASSES
    from d2lite.engine import hooks

    cfg = tiny_cfg(tmp_path)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(TRASH_CLASSES)
    cfg.DATASETS.TRAIN = (trash_datasets["train"],)
    cfg.DATASETS.TEST = (trash_datasets["val"],)
    cfg.DATASETS.VAL = (trash_datasets["val"],)
    cfg.SOLVER.MAX_ITER = 4
    cfg.TEST.EVAL_PERIOD = 2
    cfg.TEST.VAL_PERIOD = 2
    cfg.TEST.BEST_METRIC = "bbox/AP50"
    cfg.TEST.EARLY_STOP_PATIENCE = 5
    trainer = CocoTrainer(cfg)
    order = [type(h) for h in trainer._hooks]
    assert order == [
        hooks.IterationTimer,
        hooks.LRScheduler,
        hooks.PeriodicCheckpointer,
        hooks.ValidationLoss,
        hooks.EvalHook,
        hooks.BestCheckpointer,
        hooks.EarlyStopping,
        hooks.PeriodicWriter,
    ]
    trainer.resume_or_load(resume=False)
    assert trainer.train() is None  # no TEST.EXPECTED_RESULTS
    results = trainer._last_eval_results
    assert "AP50" in results["bbox"]
    lines = [json.loads(x) for x in open(os.path.join(cfg.OUTPUT_DIR, "metrics.json"))]
    evals = [line["iteration"] for line in lines if "bbox/AP50" in line]
    assert evals == [1, 4]  # after iteration 1, and after training
    history = trainer.storage.history("val_total_loss").values()
    assert [it for _, it in history] == [1, 3]
    assert os.path.exists(os.path.join(cfg.OUTPUT_DIR, "model_best.pth"))


def test_default_trainer_calls_after_backward_hooks(tmp_path):
    from d2lite.engine import HookBase

    class GradNorm(HookBase):
        norms: list = []

        def after_backward(self):
            grads = [p.grad for p in self.trainer.model.parameters() if p.grad is not None]
            self.norms.append(float(sum(g.norm() for g in grads)))

    cfg = tiny_cfg(tmp_path)
    cfg.SOLVER.MAX_ITER = 1
    trainer = ToyDataTrainer(cfg)
    trainer.register_hooks([GradNorm()])
    trainer.train()
    assert len(GradNorm.norms) == 1 and GradNorm.norms[0] > 0


def test_seeded_runs_on_synthetic_data_give_identical_losses(tmp_path, trash_datasets):
    from d2lite.extras.synthetic import TRASH_CLASSES

    def run(name):
        cfg = tiny_cfg(tmp_path / name)
        cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(TRASH_CLASSES)
        cfg.DATASETS.TRAIN = (trash_datasets["train"],)
        cfg.SOLVER.MAX_ITER = 3
        cfg.SEED = 42
        default_setup(cfg, default_argument_parser().parse_args([]))
        trainer = DefaultTrainer(cfg)
        trainer.train()
        return {
            k: [v for v, _ in trainer.storage.history(k).values()]
            for k in ("loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc")
        }

    first, second = run("a"), run("b")
    assert first == second
    assert len(first["loss_cls"]) == 3


def test_default_trainer_reports_a_typo_key_set_by_attribute(tmp_path, caplog, monkeypatch):
    cfg = tiny_cfg(tmp_path)
    cfg.DATALOADER.NUM_WOREKRS = 2
    monkeypatch.setenv("D2LITE_STRICT_CONFIG", "1")
    with pytest.raises(KeyError, match="DATALOADER.NUM_WOREKRS.*Did you mean DATALOADER.NUM_WORKERS"):
        DefaultTrainer(cfg)
    monkeypatch.delenv("D2LITE_STRICT_CONFIG")
    ToyDataTrainer(cfg)  # without the opt-in it runs, as on Detectron2, and says why it may not do
    assert "DATALOADER.NUM_WOREKRS Did you mean DATALOADER.NUM_WORKERS?" in caplog.text


def test_default_trainer_names_a_wrong_type_before_training(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.SOLVER.MAX_ITER = "10"
    with pytest.raises(ValueError, match="SOLVER.MAX_ITER"):
        DefaultTrainer(cfg)


class _FixedResults(ToyDataTrainer):
    """Evaluation replaced by fixed numbers, so train()'s return value can be checked alone."""

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        return {"bbox": {"AP": 50.0}}


def test_train_returns_results_only_with_expected_results(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.SOLVER.MAX_ITER = 1
    trainer = _FixedResults(cfg)
    assert trainer.train() is None
    assert trainer._last_eval_results == {"bbox": {"AP": 50.0}}
    cfg.TEST.EXPECTED_RESULTS = [["bbox", "AP", 50.0, 0.1]]
    assert _FixedResults(cfg).train() == {"bbox": {"AP": 50.0}}


def test_trainer_model_optimizer_and_loader_can_be_replaced(tmp_path):
    trainer = ToyDataTrainer(tiny_cfg(tmp_path))
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = [1, 2]
    trainer.model, trainer.optimizer, trainer.data_loader = model, optimizer, loader
    assert trainer._trainer.model is model and trainer.model is model
    assert trainer._trainer.optimizer is optimizer and trainer.optimizer is optimizer
    assert trainer._trainer.data_loader is loader and trainer.data_loader is loader


class _ListLoaderTrainer(ToyDataTrainer):
    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return [[{"image_id": 0}], [{"image_id": 1}]]


class _CountingEvaluator:
    def __init__(self, result):
        self.result, self.seen = result, 0

    def reset(self):
        self.seen = 0

    def process(self, inputs, outputs):
        self.seen += len(inputs)

    def evaluate(self):
        return self.result


def _dataset_evaluator(result):
    from d2lite.evaluation import DatasetEvaluator

    return type("Counting", (_CountingEvaluator, DatasetEvaluator), {})(result)


def test_test_without_build_evaluator_warns_and_skips(tmp_path, caplog):
    cfg = tiny_cfg(tmp_path)
    cfg.DATASETS.TEST = ("a", "b")
    model = lambda inputs: [{} for _ in inputs]  # noqa: E731
    results = _ListLoaderTrainer.test(cfg, model)
    assert results == {"a": {}, "b": {}}
    assert caplog.text.count(
        "No evaluator found. Use `DefaultTrainer.test(evaluators=)`, or implement its "
        "`build_evaluator` method."
    ) == 2
    evaluator = _dataset_evaluator({"bbox": {"AP": 1.0}})
    cfg.DATASETS.TEST = ("a",)
    assert _ListLoaderTrainer.test(cfg, model, evaluators=evaluator) == {"bbox": {"AP": 1.0}}
    assert evaluator.seen == 2
    with pytest.raises(TypeError, match="must return a dict"):
        _ListLoaderTrainer.test(cfg, model, evaluators=[_dataset_evaluator([1.0])])


def test_default_trainer_without_evaluator_writes_no_evaluation_line(
    tmp_path, trash_datasets, caplog
):
    from d2lite.extras.synthetic import TRASH_CLASSES

    cfg = tiny_cfg(tmp_path)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(TRASH_CLASSES)
    cfg.DATASETS.TRAIN = (trash_datasets["train"],)
    cfg.DATASETS.TEST = (trash_datasets["val"],)
    cfg.SOLVER.MAX_ITER = 1
    with caplog.at_level(logging.INFO, logger="d2lite"):
        trainer = DefaultTrainer(cfg)
        assert trainer.train() is None
    assert "No evaluator found" in caplog.text
    assert trainer._last_eval_results == {}
    lines = [json.loads(x) for x in open(os.path.join(cfg.OUTPUT_DIR, "metrics.json"))]
    # One line for the last iteration, as in Detectron2; no evaluation line at iteration 1.
    assert [line["iteration"] for line in lines] == [0]
    assert not (tmp_path / "out" / "inference").exists()


def test_default_predictor_checks_the_config(tmp_path, caplog):
    cfg = tiny_cfg(tmp_path)
    cfg.INPUT.MIN_SIZE_TST = 32
    DefaultPredictor(cfg)
    assert "INPUT.MIN_SIZE_TST" in caplog.text and "INPUT.MIN_SIZE_TEST" in caplog.text
    cfg = tiny_cfg(tmp_path)
    cfg.INPUT.MAX_SIZE_TEST = "64"
    with pytest.raises(ValueError, match="INPUT.MAX_SIZE_TEST"):
        DefaultPredictor(cfg)


def test_default_predictor_outputs_can_be_edited_in_place(tmp_path):
    predictor = DefaultPredictor(tiny_cfg(tmp_path))
    instances = predictor(np.zeros((64, 80, 3), dtype=np.uint8))["instances"]
    assert not instances.pred_boxes.tensor.is_inference()
    instances.pred_boxes.tensor[:, 0] += 1  # an inference-mode tensor would refuse this


def test_default_setup_takes_any_args_and_applies_float32_precision(tmp_path, monkeypatch):
    import d2lite.engine.arguments as arguments

    applied = []
    monkeypatch.setattr(arguments, "set_float32_precision", applied.append)
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path / "run")
    default_setup(cfg, {})  # Detectron2's own test passes a dict
    assert applied == []  # FLOAT32_PRECISION "" leaves torch alone
    assert "Running with full config" in (tmp_path / "run" / "log.txt").read_text()
    cfg.FLOAT32_PRECISION = "medium"
    default_setup(cfg, {})
    assert applied == ["medium"]


def test_set_float32_precision_is_cuda_only(monkeypatch):
    from d2lite.engine.arguments import set_float32_precision

    before, tf32_before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    if not torch.cuda.is_available():
        set_float32_precision("medium")
        assert torch.get_float32_matmul_precision() == before
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        # The real cudnn module refuses settings without a GPU; stand in for it.
        monkeypatch.setattr(torch.backends, "cudnn", SimpleNamespace(allow_tf32=None))
    try:
        set_float32_precision("highest")
        assert torch.get_float32_matmul_precision() == "highest"
        assert torch.backends.cudnn.allow_tf32 is False
        set_float32_precision("medium")
        assert torch.get_float32_matmul_precision() == "medium"
        assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.set_float32_matmul_precision(before)
        torch.backends.cudnn.allow_tf32 = tf32_before


def test_non_finite_rpn_boxes_name_the_iteration_and_last_losses(tmp_path):
    from d2lite.engine import hooks

    def poison(trainer):
        if trainer.iter == 1:  # as a diverged step would leave them
            with torch.no_grad():
                for p in trainer.model.proposal_generator.parameters():
                    p.fill_(float("inf"))

    cfg = tiny_cfg(tmp_path)
    cfg.SOLVER.MAX_ITER = 5
    trainer = ToyDataTrainer(cfg)
    trainer.register_hooks([hooks.CallbackHook(after_step=poison)])
    with pytest.raises(FloatingPointError) as info:
        trainer.train()
    message = str(info.value)
    assert message.startswith("Training diverged at iteration 2: Predicted boxes")
    assert "last logged losses (iteration 1): loss_box_reg=" in message
    assert "Inf/NaN" in str(info.value.__cause__)


def test_fewer_classes_than_the_training_data_fail_before_the_first_step(tmp_path, trash_datasets):
    cfg = tiny_cfg(tmp_path)  # 2 classes, for the 10 of the trash data
    cfg.DATASETS.TRAIN = (trash_datasets["train"],)
    with pytest.raises(ValueError, match=r"NUM_CLASSES=2 but there are 10 thing_classes of "):
        DefaultTrainer(cfg)


def test_a_checkpoint_of_an_older_d2lite_resumes_and_says_the_data_order_restarts(
    tmp_path, trash_datasets
):
    from d2lite.extras.synthetic import TRASH_CLASSES

    cfg = tiny_cfg(tmp_path)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(TRASH_CLASSES)
    cfg.DATASETS.TRAIN = (trash_datasets["train"],)
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.CHECKPOINT_PERIOD = 2, 1
    DefaultTrainer(cfg).train()
    path = os.path.join(cfg.OUTPUT_DIR, "model_0000000.pth")
    checkpoint = torch.load(path, weights_only=True)
    assert {"model", "iteration", "trainer"} <= set(checkpoint)
    assert {"iteration", "hooks", "_trainer"} <= set(checkpoint["trainer"])
    assert "optimizer" in checkpoint["trainer"]["_trainer"]
    assert "rng" in checkpoint["trainer"] and "data_loader" in checkpoint["trainer"]["_trainer"]
    del checkpoint["trainer"]["rng"], checkpoint["trainer"]["_trainer"]["data_loader"]
    torch.save(checkpoint, path)
    with open(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint"), "w") as f:
        f.write("model_0000000.pth")

    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    trainer = DefaultTrainer(cfg)
    logging.getLogger("d2lite").addHandler(handler)
    trainer.resume_or_load(resume=True)
    trainer.train()
    assert trainer.start_iter == 1 and trainer.iter == 2
    assert any("data order restarts" in m for m in records), records
    assert any("no RNG state" in m for m in records), records


def test_default_trainer_is_the_trainer_and_detectron2_scripts_reach_trainer_dot_trainer(
    tmp_path,
):
    from d2lite.engine import SimpleTrainer

    steps = []

    class Trainer(ToyDataTrainer):
        def run_step(self):
            # As Detectron2 scripts override it: something, then the inner trainer's step.
            steps.append(self.iter)
            self._trainer.iter = self.iter
            self._trainer.run_step()

    cfg = tiny_cfg(tmp_path)
    cfg.SOLVER.MAX_ITER = 2
    cfg.SOLVER.AMP.ENABLED = True
    trainer = Trainer(cfg)
    assert isinstance(trainer, SimpleTrainer) and "after_backward" not in vars(trainer)
    assert trainer.precision in (torch.bfloat16, None)  # AMP on the CPU, as AMPTrainer's
    trainer._trainer.zero_grad_before_forward = True
    assert trainer.zero_grad_before_forward
    assert trainer._trainer.data_loader is trainer.data_loader
    assert trainer._trainer is trainer._trainer
    first = next(trainer._trainer._data_loader_iter)
    assert first[0]["image"].shape == (3, 64, 80)
    trainer.train()
    assert steps == [0, 1] and trainer.iter == 2
    assert len(trainer.storage.history("total_loss").values()) == 2


def test_a_detectron2_default_trainer_checkpoint_loads(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.SOLVER.MAX_ITER = 1
    trainer = ToyDataTrainer(cfg)
    trainer.train()
    optimizer_state = trainer.optimizer.state_dict()
    # Detectron2's DefaultTrainer.state_dict: no RNG or loader state, the step's under _trainer.
    detectron2_state = {
        "iteration": 0,
        "hooks": {"LRScheduler": trainer.state_dict()["hooks"]["LRScheduler"]},
        "_trainer": {"iteration": 0, "optimizer": optimizer_state},
    }
    other = ToyDataTrainer(cfg)
    other.load_state_dict(detectron2_state)
    assert other.iter == 0
    assert other.optimizer.state_dict()["state"].keys() == optimizer_state["state"].keys()
    # And what this trainer saves loads back, in that layout.
    saved = trainer.state_dict()
    assert set(saved["_trainer"]) == {"iteration", "optimizer"} and "rng" in saved
    other.load_state_dict(saved)
    assert other.iter == 1


def test_a_step_trainer_a_script_puts_in_place_runs_every_step(tmp_path):
    from d2lite.engine import SimpleTrainer

    class CountingStep(SimpleTrainer):
        steps: list[int] = []

        def run_step(self):
            CountingStep.steps.append(self.iter)
            super().run_step()

    class Trainer(ToyDataTrainer):
        def __init__(self, cfg):
            super().__init__(cfg)
            # As Detectron2 scripts do: their own inner trainer over the same parts.
            self._trainer = CountingStep(self.model, self.data_loader, self.optimizer)

    cfg = tiny_cfg(tmp_path)
    cfg.SOLVER.MAX_ITER = 3
    trainer = Trainer(cfg)
    assert isinstance(trainer._trainer, CountingStep)
    trainer.train()
    assert CountingStep.steps == [0, 1, 2] and trainer.iter == 3
    assert len(trainer.storage.history("total_loss").values()) == 3
