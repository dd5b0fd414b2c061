"""``DetectionCheckpointer``: atomic saves and safe loading of d2lite/Detectron2/Caffe2 weights.

Formats read by :meth:`DetectionCheckpointer.load`:

* ``.pth``/``.pt`` written by ``torch.save``: a training checkpoint ``{"model": ..., ...}`` or a
  bare state dict (e.g. torchvision's ImageNet ResNets), read with ``weights_only=True``.
* ``.pkl`` from Detectron2's model zoo ``{"model": {name: ndarray}, "__author__": ...}`` or
  Caffe2/Detectron1 ``{"blobs": {...}}`` / a flat dict of blobs, read with a restricted
  unpickler that admits nothing but numpy arrays and containers.

Names are converted by the rules of ``c2_model_loading``:

* Caffe2 blobs, bare state dicts (torchvision's ImageNet files) and files carrying
  ``"matching_heuristics": True`` go through the explicit ResNet name maps
  (``convert_to_model_names``); names it does not know are kept.
* Then, as in Detectron2, a checkpoint flagged ``matching_heuristics`` (Caffe2 blobs, such a
  file, or a path ending in ``?matching_heuristics=True``) gets Detectron2's suffix matching
  (``align_and_update_state_dicts``). A bare state dict is not flagged in Detectron2, so it
  skips this step: its Detectron2-style names load exactly as they are.
* torchvision weights reaching a model built with Caffe2's input settings or strides warn
  (``weights_settings``); ``check_weights_settings`` sets them before the model is built.

What is on disk stays whole (``file_integrity``, ``state_checks``): saves are atomic and leave
no temporary file behind except when killed, and then the next checkpointer on the same
directory removes it; a model or optimizer state with NaN/inf is refused rather than saved; a
zip ``.pth`` has its CRC-32s checked before loading. Legacy (non-zip) torch files and pickles
carry no CRC; a ``.pkl`` named like a model-zoo file (``model_final_<md5 prefix>.pkl``) has its
md5 prefix checked instead, with a warning on a mismatch.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import torch
from fvcore.common.checkpoint import Checkpointer
from tabulate import tabulate
from torch import nn

from d2lite.utils import comm
from d2lite.utils.file_io import PathManager

from .c2_model_loading import align_and_update_state_dicts, convert_to_model_names
from .file_integrity import (
    atomic_write,
    model_zoo_md5_mismatch,
    remove_stale_temp_files,
    verify_zip_crcs,
)
from .safe_pickle import safe_load_pickle
from .state_checks import non_finite_tensors, non_finite_training_state, weights_only_safe
from .weights_settings import warn_torchvision_mismatches

__all__ = ["DetectionCheckpointer", "format_incompatible_keys"]

logger = logging.getLogger(__name__)

# The model rebuilds these from the config (non-persistent buffers); old checkpoints may
# still carry them, which is expected rather than worth a warning.
_CONFIG_DERIVED_KEYS = ("pixel_mean", "pixel_std")
_CONFIG_DERIVED_SUBSTRINGS = ("anchor_generator.cell_anchors",)


def _config_derived(key: str, in_checkpoint: bool = False) -> bool:
    """Whether ``key`` is a buffer the model rebuilds from the config; a checkpoint may also
    carry the anchors of older models."""
    derived = key.rsplit(".", 1)[-1] in _CONFIG_DERIVED_KEYS
    return derived or (in_checkpoint and any(s in key for s in _CONFIG_DERIVED_SUBSTRINGS))


def _ndarrays_to_tensors(state_dict: dict[str, Any]) -> None:
    """In place (keeping a state dict's ``_metadata``): numpy arrays and scalars -> tensors."""
    for k, v in list(state_dict.items()):
        if isinstance(v, (np.ndarray, np.generic)):
            # np.array copies, so read-only buffers from pickles become writable tensors.
            state_dict[k] = torch.from_numpy(np.array(v))


def _some(names: list[str], limit: int = 5) -> str:
    """``"a, b, c and 7 more"``."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _group_keys(keys: list[str]) -> list[str]:
    """``["a.b.weight", "a.b.bias"]`` -> ``["a.b.{bias, weight}"]``, sorted."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        head, _, tail = key.rpartition(".")
        groups[head].append(tail)
    out = []
    for head, tails in groups.items():
        prefix = f"{head}." if head else ""
        out.append(prefix + (tails[0] if len(tails) == 1 else "{" + ", ".join(sorted(tails)) + "}"))
    return sorted(out)


def format_incompatible_keys(
    missing: list[str], unexpected: list[str], incorrect_shapes: list[tuple[str, tuple, tuple]]
) -> str:
    """One table of the keys that were not loaded; "" when everything loaded.

    Args:
        missing (list[str]): model keys absent from the checkpoint.
        unexpected (list[str]): checkpoint keys absent from the model.
        incorrect_shapes (list[tuple[str, tuple, tuple]]): (key, checkpoint shape, model shape)
            of the skipped keys.
    """
    rows = [
        ("shape mismatch, skipped", key, str(tuple(ckpt)), str(tuple(model)))
        for key, ckpt, model in sorted(incorrect_shapes)
    ]
    rows += [("missing in checkpoint", key, "-", "") for key in _group_keys(missing)]
    rows += [("unused: not in model", key, "", "-") for key in _group_keys(unexpected)]
    if not rows:
        return ""
    header = ("status", "key", "checkpoint shape", "model shape")
    return tabulate(rows, headers=header, tablefmt="presto", disable_numparse=True)


class DetectionCheckpointer(Checkpointer):
    """fvcore's ``Checkpointer`` with atomic, checked saves, CRC-checked loads, and the
    d2lite/Detectron2/Caffe2 weight formats.

    Example::

        checkpointer = DetectionCheckpointer(model, cfg.OUTPUT_DIR, optimizer=optimizer)
        start_iter = checkpointer.resume_or_load(cfg.MODEL.WEIGHTS).get("iteration", -1) + 1
    """

    def __init__(
        self,
        model: nn.Module,
        save_dir: str = "",
        *,
        save_to_disk: bool | None = None,
        **checkpointables: Any,
    ) -> None:
        """
        Args:
            model (nn.Module): the model; DataParallel/DDP wrappers are unwrapped.
            save_dir (str): directory holding the checkpoints and ``last_checkpoint``.
                Defaults to "" (saving disabled).
            save_to_disk (bool | None): whether :meth:`save` writes; None means only the main
                process writes. Defaults to None.
            **checkpointables: objects with ``state_dict``/``load_state_dict`` saved alongside
                the model (optimizer, scheduler, trainer).
        """
        super().__init__(
            model,
            save_dir,
            save_to_disk=comm.is_main_process() if save_to_disk is None else save_to_disk,
            **checkpointables,
        )
        self.path_manager = PathManager
        self.logger = logger
        self._loading_path = ""
        self._force_conversion = False
        # Set while loading a bare state dict, which only d2lite's explicit maps convert.
        self._bare_state_dict = False
        if self.save_dir and self.save_to_disk:
            # Before any load or save: the next run (or --resume) clears what a killed one left.
            remove_stale_temp_files(self.save_dir)

    def save(self, name: str, **kwargs: Any) -> None:
        """Atomically writes ``{save_dir}/{name}.pth`` and then points ``last_checkpoint`` to it.

        Args:
            name (str): file name without extension.
            **kwargs: extra data stored in the checkpoint (e.g. ``iteration=...``).

        Raises:
            FloatingPointError: the model or an optimizer state holds NaN or infinity; nothing
                is written and ``last_checkpoint`` keeps naming the previous file.
        """
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data = weights_only_safe({**data, **kwargs}, "checkpoint")

        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        if os.path.basename(save_file) != basename:
            raise ValueError(f"Checkpoint name {name!r} must not contain a directory")
        self._refuse_non_finite(data, save_file)
        os.makedirs(self.save_dir, exist_ok=True)
        # Also here: a killed writer on another host becomes stale only after a while.
        remove_stale_temp_files(self.save_dir)
        self.logger.info(f"Saving checkpoint to {save_file}")
        atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def _refuse_non_finite(self, data: dict[str, Any], save_file: str) -> None:
        """Raises FloatingPointError if the model or an optimizer state holds NaN or inf.

        Resuming from such a file would continue a diverged run, so it is never written.
        """
        bad = non_finite_training_state(data)
        if not bad:
            return
        if self.has_checkpoint():
            previous = (
                f"last_checkpoint still names {self.get_checkpoint_file()}, the last checkpoint "
                "saved; resume from it"
            )
        else:
            previous = f"There is no earlier checkpoint in {self.save_dir}; start again"
        raise FloatingPointError(
            f"Not saving {save_file}: NaN or infinite values in {_some(bad)}. Training has "
            f"diverged. {previous} with a lower SOLVER.BASE_LR or with gradient clipping "
            "(SOLVER.CLIP_GRADIENTS)."
        )

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        """Atomically writes ``last_checkpoint`` (the basename of the newest checkpoint)."""
        save_file = os.path.join(self.save_dir, "last_checkpoint")
        atomic_write(save_file, lambda f: f.write(last_filename_basename.encode("utf-8")))

    def load(self, path: str, checkpointables: list[str] | None = None) -> dict[str, Any]:
        """Loads the model (and the named checkpointables) from a file, URL or detectron2:// path.

        Args:
            path (str): a local file, an http(s) URL or ``detectron2://...``; "" loads nothing.
                A ``?matching_heuristics=True`` suffix renames the weights to the model's
                names (see the module docstring).
            checkpointables (list[str] | None): which checkpointables to restore; None means
                all, [] only the model. Defaults to None.

        Returns:
            dict: what is left of the checkpoint after the model and the checkpointables were
                taken out (e.g. ``"iteration"``); {} when ``path`` is empty.
        """
        if path and "?" in path:
            parsed = urlparse(path)
            queries = parse_qs(parsed.query)
            self._force_conversion = queries.pop("matching_heuristics", ["False"]) == ["True"]
            if queries:
                raise ValueError(f"Unsupported query {queries} in checkpoint path {path}")
            path = parsed._replace(query="").geturl()
        try:
            if path:
                path = self.path_manager.get_local_path(path)
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"Checkpoint {path} not found")
                self._check_model_zoo_md5(path)
            self._loading_path = path
            return super().load(path, checkpointables)
        finally:
            self._force_conversion = False
            self._bare_state_dict = False

    def _load_file(self, filename: str) -> dict[str, Any]:
        """Reads a local file into ``{"model": state_dict, ...}``, flagging foreign names."""
        if filename.endswith(".pkl"):
            with self.path_manager.open(filename, "rb") as f:
                data = safe_load_pickle(filename, f)
            return self._from_pickle(data, filename)
        loaded = self._torch_load(filename)
        if not isinstance(loaded, dict):
            raise ValueError(f"{filename} holds a {type(loaded).__name__}, not a state dict")
        if "model" not in loaded:
            loaded = {"model": loaded, "matching_heuristics": True}
            self._bare_state_dict = not self._force_conversion
        if self._force_conversion:
            loaded["matching_heuristics"] = True
        return loaded

    def _check_model_zoo_md5(self, filename: str) -> None:
        """Warns if a file named like a Detectron2 model-zoo file does not match its md5 prefix.

        Pickles carry no CRC, so this name is the only check a model-zoo .pkl gets. A warning,
        not an error: a file of the user's own may happen to be named that way.
        """
        actual = model_zoo_md5_mismatch(filename)
        if actual:
            self.logger.warning(
                f"{filename} may be damaged or incompletely downloaded: Detectron2's model zoo "
                f"names each file by its md5 prefix, but this file's md5 is {actual}. If it came "
                "from the model zoo, delete it to download it again. Loading it anyway."
            )

    def _torch_load(self, filename: str) -> Any:
        """``torch.load`` with ``weights_only=True``, CRCs checked first, errors naming the file."""
        try:
            with self.path_manager.open(filename, "rb") as f:
                # torch.load skips the CRCs, so a flipped byte in tensor data would load.
                verify_zip_crcs(filename, f)
        except (zipfile.BadZipFile, NotImplementedError, EOFError, ValueError) as e:
            raise self._corrupt(filename, e) from e
        try:
            with self.path_manager.open(filename, "rb") as f:
                return torch.load(f, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            # torch words a refused global as "... GLOBAL module.name ..."; anything else
            # (e.g. "Unsupported operand") means the bytes are not a valid pickle.
            refused = re.search(r"GLOBAL ([\w.]+)", str(e))
            if refused:
                raise pickle.UnpicklingError(
                    f"Refusing to load {filename}: it references {refused.group(1)}, not a "
                    "tensor or container, and unpickling it could run code. If you trust the "
                    "file, re-save its state dict with torch.save(obj.state_dict(), path)."
                ) from e
            raise self._corrupt(filename, e) from e
        except (RuntimeError, EOFError, ValueError, OSError) as e:
            raise self._corrupt(filename, e) from e

    @staticmethod
    def _corrupt(filename: str, cause: BaseException) -> RuntimeError:
        first_line = str(cause).splitlines()[0] if str(cause) else ""
        return RuntimeError(
            f"Cannot read checkpoint {filename}: the file is truncated or corrupt "
            f"({type(cause).__name__}: {first_line}). If it was being written when a job was "
            "killed, use the previous checkpoint named in last_checkpoint or re-download it."
        )

    def _from_pickle(self, data: Any, filename: str) -> dict[str, Any]:
        """Detectron2 model-zoo dicts pass through; Caffe2 blobs are marked for conversion."""
        if not isinstance(data, dict):
            raise ValueError(f"{filename} holds a {type(data).__name__}, not a dict of weights")
        if isinstance(data.get("model"), dict):
            # Detectron2 format; files converted from other sources set "matching_heuristics".
            self.logger.info(f"Reading a file from '{data.get('__author__', 'unknown')}'")
            return data
        if "blobs" in data:
            data = data["blobs"]
        # Caffe2 files mix weights with solver state ("*_momentum") and scalars (e.g. "lr").
        blobs = {
            k: v
            for k, v in data.items()
            if isinstance(v, np.ndarray) and not k.endswith("_momentum")
        }
        return {"model": blobs, "__author__": "Caffe2", "matching_heuristics": True}

    def _load_model(self, checkpoint: dict[str, Any]) -> Any:
        """Converts foreign names, loads (fvcore skips wrong shapes), hides config buffers."""
        _ndarrays_to_tensors(checkpoint["model"])
        non_finite = non_finite_tensors(checkpoint["model"], "model")
        if non_finite:
            # Loading still works as in Detectron2, but every output would be NaN.
            self.logger.warning(
                f"{self._loading_path} holds NaN or infinite weights in {_some(non_finite)}; "
                "it was saved from a diverged run, and the model will compute NaN."
            )
        if checkpoint.get("matching_heuristics", False):
            warn_torchvision_mismatches(self.model, checkpoint["model"], self._loading_path)
            model_state = self.model.state_dict()
            weights = convert_to_model_names(checkpoint["model"], model_state.keys())
            if not self._bare_state_dict:
                # The explicit maps already gave exact names, which match themselves here.
                weights = align_and_update_state_dicts(model_state, weights, c2_conversion=False)
            checkpoint["model"] = weights
        incompatible = super()._load_model(checkpoint)
        missing, unexpected = incompatible.missing_keys, incompatible.unexpected_keys
        missing[:] = [k for k in missing if not _config_derived(k)]
        unexpected[:] = [k for k in unexpected if not _config_derived(k, in_checkpoint=True)]
        return incompatible

    def _log_incompatible_keys(self, incompatible: Any) -> None:
        table = format_incompatible_keys(
            incompatible.missing_keys, incompatible.unexpected_keys, incompatible.incorrect_shapes
        )
        if table:
            self.logger.warning(
                f"Some weights of {self._loading_path} were not loaded; the rest were:\n{table}"
            )
        else:
            self.logger.info(f"All model weights loaded from {self._loading_path}")
