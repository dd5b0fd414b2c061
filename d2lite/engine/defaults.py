"""What a training script needs besides the loop: ``DefaultTrainer`` (model, data, optimizer,
schedule, checkpoints and hooks from a config), ``DefaultPredictor``, the argument parser and
``default_setup`` (the last three live in ``predictor.py`` and ``arguments.py``, re-exported
here, where Detectron2 has them). ``tools/plain_train_net.py`` shows the training without hooks.
"""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from d2lite.checkpoint import DetectionCheckpointer
from d2lite.config import CfgNode, check_cfg_keys
from d2lite.config.training_checks import check_training_settings
from d2lite.data import DatasetMapper, build_detection_test_loader, build_detection_train_loader
from d2lite.data import transforms as T
from d2lite.evaluation import (
    DatasetEvaluator,
    inference_on_dataset,
    print_csv_format,
    verify_results,
)
from d2lite.modeling import build_model
from d2lite.solver import build_lr_scheduler, build_optimizer
from d2lite.utils import comm
from d2lite.utils.events import EventWriter
from d2lite.utils.logger import setup_logger
from d2lite.utils.run_summary import describe_training, save_model_description

from . import hooks
from .arguments import default_argument_parser, default_setup
from .predictor import DefaultPredictor
from .train_loop import HookBase, SimpleTrainer
from .train_state import bn_modules_in_training
from .writers import default_writers

__all__ = [
    "create_ddp_model",
    "default_argument_parser",
    "default_setup",
    "default_writers",
    "DefaultPredictor",
    "DefaultTrainer",
]

logger = logging.getLogger(__name__)


def create_ddp_model(model: nn.Module, *, fp16_compression: bool = False, **kwargs) -> nn.Module:
    """Wraps ``model`` in ``DistributedDataParallel`` when there is more than one process.

    Args:
        model (nn.Module): the model, already on its device.
        fp16_compression (bool): send gradients as float16. Defaults to False.
        kwargs: passed to ``DistributedDataParallel``.
    """
    if comm.get_world_size() == 1:
        return model
    if "device_ids" not in kwargs and next(model.parameters()).is_cuda:
        kwargs["device_ids"] = [comm.get_local_rank()]
    ddp = DistributedDataParallel(model, **kwargs)
    if fp16_compression:
        # Here: torch.distributed's submodules import only where distributed is built in.
        from torch.distributed.algorithms.ddp_comm_hooks import default as comm_hooks

        ddp.register_comm_hook(state=None, hook=comm_hooks.fp16_compress_hook)
    return ddp


class DefaultTrainer(SimpleTrainer):
    """Trains the model of a config with the standard hooks (see ``build_hooks``).

    It builds the model, optimizer, data loader and LR schedule through classmethods a subclass
    may override (``build_model``, ``build_optimizer``, ``build_lr_scheduler``,
    ``build_train_loader``, ``build_test_loader``, ``build_evaluator``), wraps the model in DDP
    when several processes run, and checkpoints to ``cfg.OUTPUT_DIR``.

    It behaves as Detectron2 0.6's: ``build_evaluator`` is not implemented, so without an
    override (or ``test(evaluators=...)``) nothing is evaluated, and ``train()`` returns the
    results only when ``TEST.EXPECTED_RESULTS`` is set. ``tools/train_net.py``'s ``Trainer``
    adds the COCO evaluator. d2lite's own extras (ValidationLoss, BestCheckpointer, early
    stopping, ``torch.compile``) come only from d2lite config keys left off by default.

    It is the ``SimpleTrainer`` that runs the steps (with ``SOLVER.AMP.ENABLED``, in mixed
    precision), where Detectron2's wraps a second trainer: ``trainer._trainer`` stands for that
    one, and checkpoints keep Detectron2's layout, the step's state under ``"_trainer"``.

    Examples:
        >>> trainer = DefaultTrainer(cfg)
        >>> trainer.resume_or_load(resume=False)  # load MODEL.WEIGHTS
        >>> trainer.train()

    Args:
        cfg (CfgNode): the full config.
    """

    def __init__(self, cfg: CfgNode) -> None:
        # Before anything is built: a typo'd key set by attribute would be silently ignored.
        check_cfg_keys(cfg)
        if not logging.getLogger("d2lite").isEnabledFor(logging.INFO):
            setup_logger()
        # Before the model and loaders read them: warn about training from random weights with
        # pretrained-only settings, and set what torchvision weights need (one message each).
        check_training_settings(cfg)
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        if comm.is_main_process() and cfg.OUTPUT_DIR:
            save_model_description(model, cfg.OUTPUT_DIR)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = create_ddp_model(model, broadcast_buffers=False, find_unused_parameters=False)
        # The checkpointer keeps the uncompiled module, so state_dict keys stay unprefixed.
        step_model = torch.compile(model) if cfg.MODEL.COMPILE else model
        super().__init__(step_model, data_loader, optimizer, amp=cfg.SOLVER.AMP.ENABLED)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = DetectionCheckpointer(
            model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self)
        )
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self._last_eval_results: dict | None = None
        self.register_hooks(self.build_hooks())

    def resume_or_load(self, resume: bool = True) -> None:
        """Resumes from ``OUTPUT_DIR/last_checkpoint`` if ``resume`` and it exists (training
        continues at its iteration + 1); otherwise loads the model weights of ``MODEL.WEIGHTS``.
        """
        self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if resume and self.checkpointer.has_checkpoint():
            # self.iter was set by load_state_dict: the iteration the checkpoint was saved at.
            self.start_iter = self.iter + 1

    def build_hooks(self) -> list[HookBase | None]:
        """Returns the hooks, which run in this order:

        1. IterationTimer; 2. LRScheduler; 3. PreciseBN (TEST.PRECISE_BN.ENABLED and BN
        layers); 4. PeriodicCheckpointer (main process); 5. ValidationLoss (TEST.VAL_PERIOD > 0
        and DATASETS.VAL); 6. EvalHook (TEST.EVAL_PERIOD); 7. BestCheckpointer (main process)
        and 8. EarlyStopping (TEST.EARLY_STOP_PATIENCE > 0), both if TEST.BEST_METRIC;
        9. PeriodicWriter (main process), last so it writes what the others put.

        5, 7 and 8 are d2lite's; with their keys at the defaults the list is Detectron2's. A
        subclass inserting its own hook before the writer uses ``hooks.insert(-1, hook)``.
        """
        cfg = self.cfg.clone()
        cfg.defrost()
        cfg.DATALOADER.NUM_WORKERS = 0  # PreciseBN needs few batches; workers cost memory
        ret: list[HookBase | None] = [hooks.IterationTimer(), hooks.LRScheduler()]
        if cfg.TEST.PRECISE_BN.ENABLED and bn_modules_in_training(self.model):
            loader = self.build_train_loader(cfg)
            ret.append(
                hooks.PreciseBN(
                    cfg.TEST.EVAL_PERIOD, self.model, loader, cfg.TEST.PRECISE_BN.NUM_ITER
                )
            )
        if comm.is_main_process():
            ret.append(hooks.PeriodicCheckpointer(self.checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD))
        if cfg.TEST.VAL_PERIOD > 0 and len(cfg.DATASETS.VAL):
            ret.append(
                hooks.ValidationLoss(self.model, self.build_val_loader(cfg), cfg.TEST.VAL_PERIOD)
            )

        def test_and_save_results():
            self._last_eval_results = self.test(self.cfg, self.model)
            return self._last_eval_results

        ret.append(hooks.EvalHook(cfg.TEST.EVAL_PERIOD, test_and_save_results))
        ret.extend(self._best_metric_hooks(cfg))
        if comm.is_main_process():
            ret.append(hooks.PeriodicWriter(self.build_writers(), period=20))
        return ret

    def _best_metric_hooks(self, cfg: CfgNode) -> list[HookBase]:
        metric = cfg.TEST.BEST_METRIC
        if not metric:
            return []
        # A validation-loss metric is produced at the validation period, others at evaluation.
        period = cfg.TEST.VAL_PERIOD if metric.startswith("val_") else cfg.TEST.EVAL_PERIOD
        ret: list[HookBase] = []
        if comm.is_main_process():
            ret.append(
                hooks.BestCheckpointer(period, self.checkpointer, metric, mode=cfg.TEST.BEST_MODE)
            )
        if cfg.TEST.EARLY_STOP_PATIENCE > 0:
            ret.append(
                hooks.EarlyStopping(metric, cfg.TEST.EARLY_STOP_PATIENCE, cfg.TEST.BEST_MODE)
            )
        return ret

    def build_writers(self) -> list[EventWriter]:
        """Returns the writers of ``PeriodicWriter`` (see ``default_writers``: a progress bar
        on a terminal, Detectron2's log lines elsewhere, ``metrics.json``, TensorBoard and
        ``training_curves.png``); override to add or replace some."""
        return default_writers(self.cfg.OUTPUT_DIR, self.max_iter)

    def train(self) -> dict | None:
        """Trains from ``start_iter`` to ``SOLVER.MAX_ITER``.

        Returns:
            dict | None: as in Detectron2, the results of the last evaluation, checked against
            ``TEST.EXPECTED_RESULTS``, when that is set (main process); otherwise None. The
            last results are kept in ``self._last_eval_results`` in every case.
        """
        logger.info(describe_training(self))
        super().train(self.start_iter, self.max_iter)
        if len(self.cfg.TEST.EXPECTED_RESULTS) and comm.is_main_process():
            if self._last_eval_results is None:
                raise RuntimeError("TEST.EXPECTED_RESULTS is set but no evaluation ran.")
            verify_results(self.cfg, self._last_eval_results)
            return self._last_eval_results
        return None

    @property
    def _trainer(self):
        """Detectron2's inner trainer, for the scripts that reach it (see ``_StepTrainer``), or
        the trainer a script put in its place."""
        custom = self.__dict__.get("_custom_trainer")
        if custom is not None:
            return custom
        # One adapter per trainer: ``trainer._trainer`` is one object, as in Detectron2.
        if "_step_trainer" not in self.__dict__:
            self.__dict__["_step_trainer"] = _StepTrainer(self)
        return self.__dict__["_step_trainer"]

    @_trainer.setter
    def _trainer(self, trainer) -> None:
        # Detectron2 scripts swap in their own step trainer (``self._trainer = MyTrainer(model,
        # data_loader, optimizer)`` after ``super().__init__``): it then runs every step.
        self.__dict__["_custom_trainer"] = trainer

    def run_step(self) -> None:
        custom = self.__dict__.get("_custom_trainer")
        if custom is None:
            super().run_step()
            return
        custom.iter = self.iter  # what Detectron2's DefaultTrainer.run_step does
        custom.run_step()

    def state_dict(self) -> dict:
        ret = super().state_dict()
        # Detectron2's layout (also d2lite's older one): the step's state apart, under
        # "_trainer"; the RNG and hook states at the top.
        step = {k: ret.pop(k) for k in ("optimizer", "grad_scaler", "data_loader") if k in ret}
        ret["_trainer"] = {"iteration": ret["iteration"], **step}
        return ret

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        super().load_state_dict({**state_dict.pop("_trainer", {}), **state_dict})

    @classmethod
    def build_model(cls, cfg: CfgNode) -> nn.Module:
        """Returns ``d2lite.modeling.build_model(cfg)``; override for another model."""
        model = build_model(cfg)
        # Detectron2 logs it at INFO; here it goes to log.txt only (and to model.txt).
        logger.debug("Model:\n%s", model)
        return model

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg: CfgNode, optimizer: torch.optim.Optimizer):
        return build_lr_scheduler(cfg, optimizer)

    @classmethod
    def build_train_loader(cls, cfg: CfgNode):
        """Returns ``build_detection_train_loader(cfg)``; override for another mapper."""
        return build_detection_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str):
        return build_detection_test_loader(cfg, dataset_name)

    @classmethod
    def build_val_loader(cls, cfg: CfgNode):
        """Returns a finite loader over ``DATASETS.VAL`` that keeps the annotations (the losses
        need them) and resizes as at test time, without random augmentation.
        """
        resize = T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, "choice")
        mapper = DatasetMapper(cfg, is_train=True, augmentations=[resize])
        batch_size = max(1, cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size())
        return build_detection_test_loader(
            cfg, list(cfg.DATASETS.VAL), mapper=mapper, batch_size=batch_size
        )

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str):
        """Returns the ``DatasetEvaluator`` of ``dataset_name``; a subclass implements it
        (``tools/train_net.py``'s ``Trainer`` returns a ``COCOEvaluator``).

        Raises:
            NotImplementedError: always, as in Detectron2; ``test`` then skips the dataset.
        """
        raise NotImplementedError(
            "DefaultTrainer evaluates only when build_evaluator() is implemented in a subclass "
            "(see tools/train_net.py), or when evaluators are passed to test()."
        )

    @classmethod
    def test(cls, cfg: CfgNode, model: nn.Module, evaluators=None) -> dict:
        """Evaluates ``model`` on each of ``DATASETS.TEST``.

        Args:
            cfg (CfgNode): the config.
            model (nn.Module): the model, with the weights to evaluate.
            evaluators (DatasetEvaluator | list | None): one per test dataset. Defaults to
                None (``build_evaluator`` for each; a dataset without one is skipped, with a
                warning, and gets ``{}``).

        Returns:
            dict: ``{dataset name: results}``, or the results themselves for one dataset.
        """
        if isinstance(evaluators, DatasetEvaluator):
            evaluators = [evaluators]
        if evaluators is not None and len(cfg.DATASETS.TEST) != len(evaluators):
            raise ValueError(
                f"{len(evaluators)} evaluators given for {len(cfg.DATASETS.TEST)} datasets in "
                f"DATASETS.TEST {tuple(cfg.DATASETS.TEST)}."
            )
        results: OrderedDict = OrderedDict()
        for idx, dataset_name in enumerate(cfg.DATASETS.TEST):
            data_loader = cls.build_test_loader(cfg, dataset_name)
            if evaluators is not None:
                evaluator = evaluators[idx]
            else:
                try:
                    evaluator = cls.build_evaluator(cfg, dataset_name)
                except NotImplementedError:
                    logger.warning(
                        "No evaluator found. Use `DefaultTrainer.test(evaluators=)`, "
                        "or implement its `build_evaluator` method."
                    )
                    results[dataset_name] = {}
                    continue
            results[dataset_name] = inference_on_dataset(model, data_loader, evaluator)
            if comm.is_main_process():
                if not isinstance(results[dataset_name], dict):
                    raise TypeError(
                        f"The evaluator of {dataset_name} must return a dict on the main "
                        f"process, got {results[dataset_name]!r}."
                    )
                logger.info("Evaluation results for %s in csv format:", dataset_name)
                print_csv_format(results[dataset_name])
        return list(results.values())[0] if len(results) == 1 else results

    @staticmethod
    def auto_scale_workers(cfg: CfgNode, num_workers: int) -> CfgNode:
        """Scales batch size, LR and schedule linearly when the world size differs from
        ``SOLVER.REFERENCE_WORLD_SIZE`` (0 disables scaling). Returns a new config.
        """
        old = cfg.SOLVER.REFERENCE_WORLD_SIZE
        if old == 0 or old == num_workers:
            return cfg
        if cfg.SOLVER.IMS_PER_BATCH % old != 0:
            raise ValueError(
                f"SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH} is not divisible by "
                f"SOLVER.REFERENCE_WORLD_SIZE={old}."
            )
        cfg = cfg.clone()
        frozen = cfg.is_frozen()
        cfg.defrost()
        scale = num_workers / old
        s = cfg.SOLVER
        s.IMS_PER_BATCH = int(round(s.IMS_PER_BATCH * scale))
        s.BASE_LR = s.BASE_LR * scale
        s.MAX_ITER, s.WARMUP_ITERS = int(round(s.MAX_ITER / scale)), int(
            round(s.WARMUP_ITERS / scale)
        )
        s.STEPS = tuple(int(round(x / scale)) for x in s.STEPS)
        s.CHECKPOINT_PERIOD = int(round(s.CHECKPOINT_PERIOD / scale))
        cfg.TEST.EVAL_PERIOD = int(round(cfg.TEST.EVAL_PERIOD / scale))
        s.REFERENCE_WORLD_SIZE = num_workers
        logger.info(
            f"Auto-scaling the config to batch_size={s.IMS_PER_BATCH}, learning_rate="
            f"{s.BASE_LR:g}, max_iter={s.MAX_ITER}, warmup={s.WARMUP_ITERS}."
        )
        if frozen:
            cfg.freeze()
        return cfg


class _StepTrainer:
    """What Detectron2 code reaches as ``trainer._trainer`` (its ``DefaultTrainer`` steps a
    second trainer): the trainer itself, attributes read and set through, except that
    ``run_step`` is ``SimpleTrainer``'s. So a subclass's ``run_step`` that ends, as
    Detectron2's does, with ``self._trainer.run_step()`` does not call itself.
    """

    def __init__(self, trainer: DefaultTrainer) -> None:
        # A weak proxy, as a hook holds the trainer: a kept _trainer must not keep it alive.
        object.__setattr__(self, "_owner", weakref.proxy(trainer))

    def run_step(self) -> None:
        SimpleTrainer.run_step(self._owner)

    def __getattr__(self, name: str):
        return getattr(self._owner, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._owner, name, value)
