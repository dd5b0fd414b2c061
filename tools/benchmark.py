#!/usr/bin/env python
"""Benchmark d2lite's training, inference and data loading, optionally beside torchvision's.

Examples:
    python tools/benchmark.py --config-file model_zoo/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml \
        --task train --size 512 --batch 2 --compare torchvision MODEL.ROI_HEADS.NUM_CLASSES 10
    python tools/benchmark.py --config-file model_zoo/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml \
        --task data --size 512 --batch 2 MODEL.ROI_HEADS.NUM_CLASSES 10

Each measurement runs in a fresh process (so its peak memory is its own), rounds alternate
d2lite and torchvision, warm-up iterations are excluded and medians are reported. Both models
get the same synthetic inputs and targets, frozen BN and frozen stages, sampling sizes and
proposal counts; their RPN box deltas are zero-initialised so that random-init models produce
like-for-like amounts of proposals, which are printed beside every time, and for inference
their classifiers are scaled down alike so that scores do not saturate.

d2lite's inference runs the path ``DefaultPredictor`` uses (``prepare_for_inference``); every
round also runs the plain eager model on the same image and checks that the detections match.
FLOPs are counted by ``torch.utils.flop_counter`` over one real iteration (forward and backward
in training): 2 per multiply-add of every conv, matmul and their gradients, the same unit as
the matmul peak printed beside them.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

logger = logging.getLogger("d2lite.benchmark")

IMAGENET_STD_BGR = [57.375, 57.120, 58.395]


def _image_size(text: str) -> tuple[int, int]:
    """'512' -> (512, 512); '800x1333' -> (800, 1333)."""
    try:
        sides = [int(v) for v in text.lower().split("x")]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2) or min(sides) <= 0:
        raise argparse.ArgumentTypeError(f"expected S or HxW in pixels, got {text!r}")
    return (sides[0], sides[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config-file", required=True, help="a d2lite / Detectron2 YAML config")
    parser.add_argument("--task", choices=["train", "eval", "data"], default="train")
    parser.add_argument("--compare", choices=["torchvision"], default=None)
    parser.add_argument(
        "--size", type=_image_size, default=(512, 512),
        help="input size in pixels: S (square) or HxW, e.g. 800x1333",
    )
    parser.add_argument("--batch", type=int, default=2, help="images per training step")
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per round")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per framework")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--plain", action="store_true", help="time d2lite's plain eager model in --task eval"
    )
    parser.add_argument(
        "--amp", action="store_true",
        help="run both models under autocast: float16 on CUDA, bfloat16 on a CPU that computes "
        "it natively",
    )
    parser.add_argument(
        "--torchvision-ftz", action="store_true",
        help="let torchvision flush denormals too (d2lite does by default on the CPU)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="K",
        help="print the K ops with the most self time of one iteration (first round)",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


def load_cfg(args: argparse.Namespace):
    from d2lite.config import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    # ImageNet std: random-init models then see standardised inputs, as torchvision's do.
    cfg.merge_from_list(
        ["MODEL.DEVICE", args.device, "MODEL.WEIGHTS", "", "MODEL.PIXEL_STD", str(IMAGENET_STD_BGR)]
        + list(args.opts)
    )
    return cfg


def synthetic_batch(num_images: int, size: tuple[int, int], num_classes: int, seed: int):
    """Returns identical images (uint8 CHW, BGR) and boxes (XYXY) with labels for both models."""
    g = torch.Generator().manual_seed(seed)
    height, width = size
    extent = torch.tensor([width, height], dtype=torch.float32)
    images, boxes, labels = [], [], []
    for _ in range(num_images):
        images.append(torch.randint(0, 256, (3, height, width), generator=g, dtype=torch.uint8))
        xy = torch.rand(6, 2, generator=g) * extent * 0.7
        wh = 16 + torch.rand(6, 2, generator=g) * extent * 0.3
        boxes.append(torch.cat([xy, torch.minimum(xy + wh, extent - 1)], dim=1))
        labels.append(torch.randint(0, num_classes, (6,), generator=g))
    return images, boxes, labels


def _unsaturate(cls_score: torch.nn.Linear) -> None:
    """Shrinks a random-init classifier 100x: on random-init features its scores otherwise
    saturate at exactly 1.0, and the top detections among ties are not well defined."""
    with torch.no_grad():
        cls_score.weight.mul_(0.01)


def build_d2lite(cfg, images, boxes, labels, train: bool):
    from d2lite.modeling import build_model
    from d2lite.structures import Boxes, Instances

    model = build_model(cfg)
    torch.nn.init.zeros_(model.proposal_generator.rpn_head.anchor_deltas.weight)
    torch.nn.init.zeros_(model.proposal_generator.rpn_head.anchor_deltas.bias)
    if not train:
        _unsaturate(model.roi_heads.box_predictor.cls_score)
    inputs = []
    for img, b, c in zip(images, boxes, labels):
        inst = Instances(tuple(img.shape[1:]), gt_boxes=Boxes(b), gt_classes=c)
        inputs.append(
            {"image": img, "instances": inst, "height": img.shape[1], "width": img.shape[2]}
        )
    counts = {}
    model.proposal_generator.register_forward_hook(
        lambda m, i, out: counts.__setitem__("proposals", sum(len(p) for p in out[0]) / len(out[0]))
    )

    def run(batch, net=model):
        out = net(batch)
        if not train:
            counts["detections"] = sum(len(o["instances"]) for o in out) / len(out)
        return out

    return model, inputs, run, counts


def build_torchvision(cfg, images, boxes, labels, train: bool, size: tuple[int, int]):
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops import FrozenBatchNorm2d

    r, rpn, roi = cfg.MODEL.RESNETS, cfg.MODEL.RPN, cfg.MODEL.ROI_HEADS
    backbone = resnet_fpn_backbone(
        backbone_name=f"resnet{r.DEPTH}", weights=None, norm_layer=FrozenBatchNorm2d,
        trainable_layers=5 - cfg.MODEL.BACKBONE.FREEZE_AT,
    )
    model = FasterRCNN(
        # The images already have the benchmark's size: torchvision's transform keeps it.
        backbone, num_classes=roi.NUM_CLASSES + 1, min_size=min(size), max_size=max(size),
        rpn_pre_nms_top_n_train=rpn.PRE_NMS_TOPK_TRAIN,
        rpn_pre_nms_top_n_test=rpn.PRE_NMS_TOPK_TEST,
        rpn_post_nms_top_n_train=rpn.POST_NMS_TOPK_TRAIN,
        rpn_post_nms_top_n_test=rpn.POST_NMS_TOPK_TEST,
        rpn_nms_thresh=rpn.NMS_THRESH, rpn_batch_size_per_image=rpn.BATCH_SIZE_PER_IMAGE,
        rpn_positive_fraction=rpn.POSITIVE_FRACTION,
        box_batch_size_per_image=roi.BATCH_SIZE_PER_IMAGE,
        box_positive_fraction=roi.POSITIVE_FRACTION, box_score_thresh=roi.SCORE_THRESH_TEST,
        box_nms_thresh=roi.NMS_THRESH_TEST, box_detections_per_img=cfg.TEST.DETECTIONS_PER_IMAGE,
    ).to(cfg.MODEL.DEVICE)
    torch.nn.init.zeros_(model.rpn.head.bbox_pred.weight)
    torch.nn.init.zeros_(model.rpn.head.bbox_pred.bias)
    if not train:
        _unsaturate(model.roi_heads.box_predictor.cls_score)
    # torchvision wants RGB in [0, 1]; d2lite's inputs are BGR uint8.
    device = cfg.MODEL.DEVICE
    tensors = [img.flip(0).float().div(255).to(device) for img in images]
    targets = [{"boxes": b.to(device), "labels": c.to(device) + 1} for b, c in zip(boxes, labels)]
    counts = {}
    model.rpn.register_forward_hook(
        lambda m, i, out: counts.__setitem__("proposals", sum(len(p) for p in out[0]) / len(out[0]))
    )

    def run(batch):
        out = model(batch[0], batch[1]) if train else model(batch[0])
        if not train:
            counts["detections"] = sum(len(o["boxes"]) for o in out) / len(out)
        return out

    return model, (tensors, targets), run, counts


def count_flops(step) -> float:
    """FLOPs (2 per multiply-add) of the convs and matmuls that one call of ``step`` runs."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def compare_detections(reference: list[dict], other: list[dict]) -> float:
    """Largest box difference in pixels between two inference outputs; inf if the detected
    classes differ (or their numbers do)."""
    worst = 0.0
    for ref, out in zip(reference, other):
        ref, out = ref["instances"], out["instances"]
        if len(ref) != len(out) or not torch.equal(ref.pred_classes, out.pred_classes):
            return float("inf")
        if len(ref):
            diff = (ref.pred_boxes.tensor - out.pred_boxes.tensor).abs().max().item()
            worst = max(worst, diff)
    return worst


def _autocast(args: argparse.Namespace):
    """The autocast context of ``--amp`` (a disabled one without it)."""
    device_type = torch.device(args.device).type
    if not args.amp:
        return torch.autocast(device_type, enabled=False)
    if device_type == "cpu":
        from d2lite.engine.train_loop import _cpu_supports_bf16

        if not _cpu_supports_bf16():
            raise RuntimeError("--amp: this CPU has no native bfloat16 support")
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return torch.autocast(device_type, dtype=torch.float16)


def _make_step(framework: str, args: argparse.Namespace, seed: int):
    """Builds one framework's model and returns (model, step, counts, extra results)."""
    cfg = load_cfg(args)
    train = args.task == "train"
    n = args.batch if train else 1
    images, boxes, labels = synthetic_batch(n, args.size, cfg.MODEL.ROI_HEADS.NUM_CLASSES, seed)
    if framework == "torchvision" and args.torchvision_ftz:
        from d2lite.layers import flush_denormals

        flush_denormals(True)
    build = build_d2lite if framework == "d2lite" else build_torchvision
    extra_args = () if framework == "d2lite" else (args.size,)
    model, batch, run, counts = build(cfg, images, boxes, labels, train, *extra_args)
    model.train(train)
    extra = {}
    if train:
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

        def step():
            with _autocast(args):
                losses = run(batch)
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()

        return model, step, counts, extra
    net = model
    if framework == "d2lite" and not args.plain:
        from d2lite.engine.predictor import prepare_for_inference

        from d2lite.layers import Conv2d

        # The reference is the model as its modules define it: every norm a separate op.
        Conv2d.fold_frozen_bn = False
        with torch.inference_mode():
            plain = run(batch)
        Conv2d.fold_frozen_bn = True
        net = prepare_for_inference(model)
        with torch.inference_mode(), _autocast(args):
            extra["max_box_diff"] = compare_detections(plain, run(batch, net))

    def step():
        with torch.inference_mode(), _autocast(args):
            if framework == "d2lite":
                run(batch, net)
            else:
                run(batch)

    return model, step, counts, extra


def _measure(framework: str, args: argparse.Namespace, seed: int) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(seed)
    model, step, counts, extra = _make_step(framework, args, seed)
    times = []
    for it in range(args.warmup + args.iters):
        start = time.perf_counter()
        step()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        if it >= args.warmup:
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    if args.profile and seed == 0:
        from torch.profiler import profile

        with profile() as prof:
            step()
        extra["profile"] = prof.key_averages().table(
            sort_by="self_cpu_time_total", row_limit=args.profile, max_name_column_width=45
        )
    flops = count_flops(step)
    return {"times": times, "peak_mb": peak, "flops": flops, **counts, **extra}


def _child(fn, fn_args, queue):
    try:
        queue.put(fn(*fn_args))
    except Exception as e:  # reported by the parent, which names the measurement
        queue.put({"error": f"{type(e).__name__}: {e}"})


def run_in_child(what: str, fn, *fn_args) -> dict:
    """Runs ``fn(*fn_args)`` in a fresh spawned process (so its peak memory and thread state
    are its own) and returns the dict it returned."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, fn_args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(f"{what} failed: {result['error']}")
    return result


def matmul_peak_gflops(threads: int, n: int = 2048, reps: int = 5) -> float:
    """The attainable fp32 GFLOP/s of this machine: the best of a few large matmuls."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_model(args: argparse.Namespace) -> dict[str, dict]:
    frameworks = ["d2lite"] + ([args.compare] if args.compare else [])
    results = {f: {"times": [], "max_box_diff": []} for f in frameworks}
    for r in range(args.rounds):
        for f in frameworks:
            out = run_in_child(f"{f} benchmark", _measure, f, args, r)
            results[f]["times"] += out.pop("times")
            if "max_box_diff" in out:
                results[f]["max_box_diff"].append(out.pop("max_box_diff"))
            if "profile" in out:
                print(f"\n{f}: top ops of one {args.task} iteration\n{out.pop('profile')}")
            results[f].update(out)
    peak = matmul_peak_gflops(args.threads)
    _print_table(args, results, peak)
    return results


def _print_table(args: argparse.Namespace, results: dict[str, dict], peak: float) -> None:
    train = args.task == "train"
    unit = "s/iter" if train else "s/image"
    path = "plain eager" if args.plain or train else "prepare_for_inference"
    print(
        f"\n{args.task} at {args.size[0]}x{args.size[1]}, batch {args.batch if train else 1}, "
        f"{args.threads} threads, device {args.device}, d2lite {path}, {args.rounds} rounds x "
        f"{args.iters} iters{', autocast' if args.amp else ''}; matmul peak {peak:.0f} GFLOP/s"
    )
    print(f"{'framework':<12} {unit:>9} {'peak MB':>9} {'GFLOP/s':>8} {'props/img':>10} "
          f"{'dets/img':>9} {'min':>7} {'max':>7}")
    for f, res in results.items():
        med = statistics.median(res["times"])
        res.update(median=med, gflops=res["flops"] / med / 1e9)
        print(f"{f:<12} {med:>9.3f} {res['peak_mb']:>9.0f} {res['gflops']:>8.1f} "
              f"{res.get('proposals', float('nan')):>10.0f} "
              f"{res.get('detections', float('nan')):>9.1f} "
              f"{min(res['times']):>7.3f} {max(res['times']):>7.3f}")
    diffs = results["d2lite"]["max_box_diff"]
    if diffs:
        same = all(d <= 1e-3 for d in diffs)
        print(f"d2lite detections vs its plain eager model: {'same' if same else 'DIFFERENT'} "
              f"(classes equal, largest box difference {max(diffs):.2e} px)")
    if args.compare:
        base, other = results["d2lite"], results[args.compare]
        print(f"ratio d2lite/{args.compare}: time {base['median'] / other['median']:.2f}, "
              f"peak memory {base['peak_mb'] / other['peak_mb']:.2f}")


def _register_synthetic(root: str, size: int, create: bool) -> str:
    from d2lite.data import DatasetCatalog, MetadataCatalog
    from d2lite.data.datasets import register_coco_instances
    from d2lite.data.datasets.synthetic import make_trash_dataset

    if create:
        make_trash_dataset(root, num_train=64, num_val=0, num_test=0, image_size=size, seed=0)
    name = "benchmark_trash_train"
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_coco_instances(name, {}, str(Path(root) / "train.json"), root)
    return name


def _data_round(args: argparse.Namespace, root: str, workers: int, seed: int) -> dict:
    """One round with ``workers`` loader processes: the loader's images/s alone, then the
    seconds per training step of the config's model fed by that loader. ``seed`` fixes the
    sampler's image order, so that both worker counts of a round train on the same images
    (the step time depends on them: ROIAlign's cost grows with the proposals' sizes)."""
    import numpy as np

    np.random.seed(seed)  # the training sampler draws its shuffle seed from numpy
    from d2lite.data import build_detection_train_loader
    from d2lite.data.datasets.synthetic import TRASH_CLASSES

    torch.set_num_threads(args.threads)
    side = args.size[0]
    name = _register_synthetic(root, side, create=False)
    cfg = load_cfg(args)
    cfg.merge_from_list([
        "DATASETS.TRAIN", f"('{name}',)", "DATALOADER.NUM_WORKERS", str(workers),
        "SOLVER.IMS_PER_BATCH", str(args.batch), "INPUT.MIN_SIZE_TRAIN", f"({side},)",
        "INPUT.MAX_SIZE_TRAIN", str(side),
        "MODEL.ROI_HEADS.NUM_CLASSES", str(len(TRASH_CLASSES)),
    ])
    it = iter(build_detection_train_loader(cfg))
    for _ in range(2):
        next(it)
    start, n = time.perf_counter(), 0
    for _ in range(10 * max(1, args.iters)):
        n += len(next(it))
    rate = n / (time.perf_counter() - start)
    return {"rate": rate, "times": _train_from_loader(cfg, it, args)}


def bench_data(args: argparse.Namespace) -> dict[str, dict[int, float]]:
    """Images per second delivered by the training loader with 0 and 2 workers, and the
    seconds per training iteration of the config's model fed by each loader: rounds alternate
    0 and 2 workers, each in a fresh process, on the same images within a round and other
    images from round to round, and medians over all rounds are reported."""
    if args.size[0] != args.size[1]:
        raise SystemExit("--task data takes a square --size (the synthetic images are square)")
    root = tempfile.mkdtemp(prefix="d2lite_bench_")
    _register_synthetic(root, args.size[0], create=True)
    rates = {0: [], 2: []}
    times = {0: [], 2: []}
    for r in range(args.rounds):
        for workers in (0, 2):
            what = f"data benchmark with {workers} workers"
            out = run_in_child(what, _data_round, args, root, workers, r)
            rates[workers].append(out["rate"])
            times[workers] += out["times"]
    result = {"loader": {}, "train": {}}
    print(f"\ndata at {args.size[0]}x{args.size[1]}, batch {args.batch}, {args.threads} threads, "
          f"{args.rounds} rounds x {args.iters} training iters (medians)")
    print(f"{'workers':>7} {'loader img/s':>13} {'train s/iter':>13} {'train img/s':>12} "
          f"{'loader/train':>13}")
    for workers in (0, 2):
        rate, step = statistics.median(rates[workers]), statistics.median(times[workers])
        result["loader"][workers], result["train"][workers] = rate, step
        consumed = args.batch / step
        print(f"{workers:>7} {rate:>13.1f} {step:>13.3f} {consumed:>12.2f} "
              f"{rate / consumed:>12.0f}x")
    print(f"training s/iter, 2 workers / 0 workers: {result['train'][2] / result['train'][0]:.3f}")
    return result


def _train_from_loader(cfg, data_iter, args: argparse.Namespace) -> list[float]:
    """Seconds of each timed training step (loading included) on batches from ``data_iter``."""
    from d2lite.modeling import build_model

    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for it in range(args.warmup + args.iters):
        start = time.perf_counter()
        losses = model(next(data_iter))
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        if it >= args.warmup:
            times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    return bench_data(args) if args.task == "data" else bench_model(args)


if __name__ == "__main__":
    main(sys.argv[1:])
