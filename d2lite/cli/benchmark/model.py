"""``d2lite benchmark --task train|eval``: d2lite's Faster R-CNN, optionally beside torchvision's.

Both models get the same synthetic inputs and targets, frozen BN and frozen stages, sampling
sizes and proposal counts; see ``d2lite.cli.benchmark`` for how the figures are measured.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch
from tabulate import tabulate
from torch.profiler import profile
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops import FrozenBatchNorm2d

from d2lite.engine.predictor import prepare_for_inference
from d2lite.engine.train_loop import _cpu_supports_bf16
from d2lite.layers import Conv2d, flush_denormals
from d2lite.modeling import build_model
from d2lite.structures import Boxes, Instances
from d2lite.utils import cpu

from .common import load_cfg, run_in_child, timed
from .neighbours import neighbours

__all__ = [
    "bench_model",
    "build_d2lite",
    "build_torchvision",
    "compare_detections",
    "synthetic_batch",
]


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
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def compare_detections(reference: list[dict], other: list[dict]) -> float:
    """Largest box difference in pixels between two inference outputs; inf if the numbers of
    detections or their classes differ.

    Each reference detection is paired with the other output's nearest box of its class, not
    with the one at its index: two detections whose scores tie to float rounding (3e-8 apart
    on a random-init model) come out of NMS in either order.
    """
    worst = 0.0
    for ref, out in zip(reference, other):
        ref, out = ref["instances"], out["instances"]
        classes = ref.pred_classes.sort().values, out.pred_classes.sort().values
        if len(ref) != len(out) or not torch.equal(*classes):
            return float("inf")
        if len(ref):
            diff = (ref.pred_boxes.tensor[:, None] - out.pred_boxes.tensor[None]).abs().amax(-1)
            diff[ref.pred_classes[:, None] != out.pred_classes[None]] = float("inf")
            worst = max(worst, diff.amin(1).max().item())
    return worst


def _autocast(args: argparse.Namespace):
    """The autocast context of ``--amp`` (a disabled one without it)."""
    device_type = torch.device(args.device).type
    if not args.amp:
        return torch.autocast(device_type, enabled=False)
    if device_type == "cpu":
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

        # The reference is the model as its modules define it: every norm a separate op.
        Conv2d.fold_frozen_bn = False
        with torch.inference_mode():
            plain = run(batch)
        Conv2d.fold_frozen_bn = True
        net = prepare_for_inference(model)
        start = time.perf_counter()
        with torch.inference_mode(), _autocast(args):
            prepared = run(batch, net)
        # The first image of the model DefaultPredictor runs (the plain model ran before it).
        extra["first"] = time.perf_counter() - start
        extra["max_box_diff"] = compare_detections(plain, prepared)

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
        elif it == 0:
            extra.setdefault("first", time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    if args.profile and seed == 0:
        with profile() as prof:
            step()
        extra["profile"] = prof.key_averages().table(
            sort_by="self_cpu_time_total", row_limit=args.profile, max_name_column_width=45
        )
    flops = count_flops(step)
    return {"times": times, "peak_mb": peak, "flops": flops, **counts, **extra}


def matmul_peak_gflops(threads: int, n: int = 2048, reps: int = 5) -> float:
    """The attainable fp32 GFLOP/s of this machine: the best of a few large matmuls."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(timed(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _child_env(framework: str, args: argparse.Namespace) -> dict[str, str | None]:
    """torchvision runs with OpenMP's own waiting, as its users get it, unless
    --torchvision-passive (or the user's environment chose a policy)."""
    if framework == "d2lite" or args.torchvision_passive or not cpu.PASSIVE_SET_BY_D2LITE:
        return {}
    return {"OMP_WAIT_POLICY": None, "D2LITE_OMP_PASSIVE": "0"}


def _run_rounds(args: argparse.Namespace, frameworks: list[str]) -> dict[str, dict]:
    results = {f: {"times": [], "max_box_diff": [], "first": []} for f in frameworks}
    for r in range(args.rounds):
        for f in frameworks:
            out = run_in_child(f"{f} benchmark", _measure, f, args, r, env=_child_env(f, args))
            results[f]["times"] += out.pop("times")
            results[f]["first"].append(out.pop("first"))
            if "max_box_diff" in out:
                results[f]["max_box_diff"].append(out.pop("max_box_diff"))
            if "profile" in out:
                print(f"\n{f}: top ops of one {args.task} iteration\n{out.pop('profile')}")
            results[f].update(out)
    return results


def bench_model(args: argparse.Namespace) -> dict[str, dict]:
    frameworks = ["d2lite"] + ([args.compare] if args.compare else [])
    results = _run_rounds(args, frameworks)
    peak = matmul_peak_gflops(args.threads)
    _print_table(args, results, peak)
    if args.neighbour:
        with neighbours(args.neighbour, args.neighbour_seconds, args.threads):
            loaded = _run_rounds(args, frameworks)
        for f in frameworks:
            results[f]["loaded"] = loaded[f]
        _print_loaded(args, results)
    return results


def _print_loaded(args: argparse.Namespace, results: dict[str, dict]) -> None:
    """Quiet beside loaded, per framework, and the targets of a robust CPU speed."""
    names = " + ".join(f"{k}{f' (nice {n})' if n else ''}" for k, n in args.neighbour)
    print(f"\nbeside {names}, the same rounds:")
    rows = []
    for f, res in results.items():
        quiet, loaded = statistics.median(res["times"]), res["loaded"]["times"]
        med, worst = statistics.median(loaded), max(loaded)
        first = statistics.median(res["first"])
        res["loaded"].update(median=med, worst=worst)
        rows.append((f, quiet, med, med / quiet, worst, worst / quiet, first / quiet))
    headers = ("framework", "quiet", "loaded", "x quiet", "worst", "x quiet", "first x quiet")
    floatfmt = ("", ".3f", ".3f", ".2f", ".3f", ".2f", ".2f")
    print(tabulate(rows, headers=headers, tablefmt="plain", floatfmt=floatfmt))
    base = results["d2lite"]
    quiet = statistics.median(base["times"])
    checks = [
        ("loaded median <= 3x quiet", base["loaded"]["median"] <= 3 * quiet),
        ("worst iteration <= 5x quiet median", base["loaded"]["worst"] <= 5 * quiet),
    ]
    if args.compare:
        other = results[args.compare]["loaded"]["median"]
        checks.append((f"loaded median <= {args.compare}'s", base["loaded"]["median"] <= other))
    print("d2lite: " + "; ".join(f"{what}: {'yes' if ok else 'NO'}" for what, ok in checks))


def _print_table(args: argparse.Namespace, results: dict[str, dict], peak: float) -> None:
    train = args.task == "train"
    unit = "s/iter" if train else "s/image"
    path = "plain eager" if args.plain or train else "prepare_for_inference"
    print(
        f"\n{args.task} at {args.size[0]}x{args.size[1]}, batch {args.batch if train else 1}, "
        f"{args.threads} threads, device {args.device}, d2lite {path}, {args.rounds} rounds x "
        f"{args.iters} iters{', autocast' if args.amp else ''}; matmul peak {peak:.0f} GFLOP/s"
    )
    rows = []
    for f, res in results.items():
        med = statistics.median(res["times"])
        res.update(median=med, gflops=res["flops"] / med / 1e9)
        counts = res.get("proposals", float("nan")), res.get("detections", float("nan"))
        times = min(res["times"]), max(res["times"])
        rows.append((f, med, res["peak_mb"], res["gflops"], *counts, *times))
    headers = ("framework", unit, "peak MB", "GFLOP/s", "props/img", "dets/img", "min", "max")
    floatfmt = ("", ".3f", ".0f", ".1f", ".0f", ".1f", ".3f", ".3f")
    print(tabulate(rows, headers=headers, tablefmt="plain", floatfmt=floatfmt))
    diffs = results["d2lite"]["max_box_diff"]
    if diffs:
        same = all(d <= 1e-3 for d in diffs)
        print(f"d2lite detections vs its plain eager model: {'same' if same else 'DIFFERENT'} "
              f"(classes equal, largest box difference {max(diffs):.2e} px)")
    if args.compare:
        base, other = results["d2lite"], results[args.compare]
        print(f"ratio d2lite/{args.compare}: time {base['median'] / other['median']:.2f}, "
              f"peak memory {base['peak_mb'] / other['peak_mb']:.2f}")
    firsts = ", ".join(
        f"{f} {statistics.median(r['first']) / r['median']:.2f}x" for f, r in results.items()
    )
    print(f"first iteration of a process vs the median: {firsts}")
