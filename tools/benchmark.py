#!/usr/bin/env python
"""Benchmark d2lite's training, inference and data loading, optionally beside torchvision's.

Examples:
    python tools/benchmark.py --config-file model_zoo/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml \
        --task train --size 512 --batch 2 --compare torchvision MODEL.ROI_HEADS.NUM_CLASSES 10
    python tools/benchmark.py --config-file model_zoo/Trash-Demo/faster_rcnn_R_18_FPN_trash_cpu.yaml \
        --task data

Each measurement runs in a fresh process (so its peak memory is its own), rounds alternate
d2lite and torchvision, warm-up iterations are excluded and medians are reported. Both models
get the same synthetic inputs and targets, frozen BN and frozen stages, sampling sizes and
proposal counts; their RPN box deltas are zero-initialised so that random-init models produce
like-for-like amounts of proposals, which are printed beside every time.
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config-file", required=True, help="a d2lite / Detectron2 YAML config")
    parser.add_argument("--task", choices=["train", "eval", "data"], default="train")
    parser.add_argument("--compare", choices=["torchvision"], default=None)
    parser.add_argument("--size", type=int, default=512, help="square input side in pixels")
    parser.add_argument("--batch", type=int, default=2, help="images per training step")
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per framework")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
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


def synthetic_batch(num_images: int, size: int, num_classes: int, seed: int):
    """Returns identical images (uint8 CHW, BGR) and boxes (XYXY) with labels for both models."""
    g = torch.Generator().manual_seed(seed)
    images, boxes, labels = [], [], []
    for _ in range(num_images):
        images.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        xy = torch.rand(6, 2, generator=g) * size * 0.7
        wh = 16 + torch.rand(6, 2, generator=g) * size * 0.3
        boxes.append(torch.cat([xy, (xy + wh).clamp(max=size - 1)], dim=1))
        labels.append(torch.randint(0, num_classes, (6,), generator=g))
    return images, boxes, labels


def build_d2lite(cfg, images, boxes, labels, train: bool):
    from d2lite.modeling import build_model
    from d2lite.structures import Boxes, Instances

    model = build_model(cfg)
    torch.nn.init.zeros_(model.proposal_generator.rpn_head.anchor_deltas.weight)
    torch.nn.init.zeros_(model.proposal_generator.rpn_head.anchor_deltas.bias)
    inputs = []
    for img, b, c in zip(images, boxes, labels):
        inst = Instances(tuple(img.shape[1:]), gt_boxes=Boxes(b), gt_classes=c)
        inputs.append({"image": img, "instances": inst, "height": img.shape[1], "width": img.shape[2]})
    counts = {}
    model.proposal_generator.register_forward_hook(
        lambda m, i, out: counts.__setitem__("proposals", sum(len(p) for p in out[0]) / len(out[0]))
    )

    def run(batch):
        out = model(batch)
        if not train:
            counts["detections"] = sum(len(o["instances"]) for o in out) / len(out)
        return out

    return model, inputs, run, counts


def build_torchvision(cfg, images, boxes, labels, train: bool, size: int):
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops import FrozenBatchNorm2d

    r, rpn, roi = cfg.MODEL.RESNETS, cfg.MODEL.RPN, cfg.MODEL.ROI_HEADS
    backbone = resnet_fpn_backbone(
        backbone_name=f"resnet{r.DEPTH}", weights=None, norm_layer=FrozenBatchNorm2d,
        trainable_layers=5 - cfg.MODEL.BACKBONE.FREEZE_AT,
    )
    model = FasterRCNN(
        backbone, num_classes=roi.NUM_CLASSES + 1, min_size=size, max_size=size,
        rpn_pre_nms_top_n_train=rpn.PRE_NMS_TOPK_TRAIN, rpn_pre_nms_top_n_test=rpn.PRE_NMS_TOPK_TEST,
        rpn_post_nms_top_n_train=rpn.POST_NMS_TOPK_TRAIN, rpn_post_nms_top_n_test=rpn.POST_NMS_TOPK_TEST,
        rpn_nms_thresh=rpn.NMS_THRESH, rpn_batch_size_per_image=rpn.BATCH_SIZE_PER_IMAGE,
        rpn_positive_fraction=rpn.POSITIVE_FRACTION, box_batch_size_per_image=roi.BATCH_SIZE_PER_IMAGE,
        box_positive_fraction=roi.POSITIVE_FRACTION, box_score_thresh=roi.SCORE_THRESH_TEST,
        box_nms_thresh=roi.NMS_THRESH_TEST, box_detections_per_img=cfg.TEST.DETECTIONS_PER_IMAGE,
    ).to(cfg.MODEL.DEVICE)
    torch.nn.init.zeros_(model.rpn.head.bbox_pred.weight)
    torch.nn.init.zeros_(model.rpn.head.bbox_pred.bias)
    # torchvision wants RGB in [0, 1]; d2lite's inputs are BGR uint8.
    tensors = [img.flip(0).float().div(255).to(cfg.MODEL.DEVICE) for img in images]
    targets = [{"boxes": b.to(cfg.MODEL.DEVICE), "labels": c.to(cfg.MODEL.DEVICE) + 1} for b, c in zip(boxes, labels)]
    counts = {}
    model.rpn.register_forward_hook(
        lambda m, i, out: counts.__setitem__("proposals", sum(len(p) for p in out[0]) / len(out[0]))
    )

    def run(batch):
        out = model(batch[0], batch[1]) if train else model(batch[0])
        if not train:
            counts["detections"] = sum(len(o["boxes"]) for o in out) / len(out)
        return out

    return model, list(zip(tensors, targets)), run, counts


def count_flops(model: torch.nn.Module, run, batch) -> float:
    """Multiply-adds x2 of every Conv2d and Linear in one forward pass (hooks, not tracing)."""
    total = [0.0]

    def conv_hook(m, i, out):
        total[0] += 2.0 * out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m, i, out):
        total[0] += 2.0 * out.numel() * m.in_features

    handles = [
        m.register_forward_hook(conv_hook if isinstance(m, torch.nn.Conv2d) else linear_hook)
        for m in model.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    with torch.inference_mode():
        run(batch)
    for h in handles:
        h.remove()
    return total[0]


def _measure(framework: str, args: argparse.Namespace, seed: int) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(seed)
    cfg = load_cfg(args)
    train = args.task == "train"
    n = args.batch if train else 1
    images, boxes, labels = synthetic_batch(n, args.size, cfg.MODEL.ROI_HEADS.NUM_CLASSES, seed)
    if framework == "d2lite":
        model, items, run, counts = build_d2lite(cfg, images, boxes, labels, train)
        batch = items
    else:
        model, items, run, counts = build_torchvision(cfg, images, boxes, labels, train, args.size)
        batch = ([t for t, _ in items], [tg for _, tg in items])
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    model.train(train)
    times = []
    for it in range(args.warmup + args.iters):
        start = time.perf_counter()
        if train:
            losses = run(batch)
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
        else:
            with torch.inference_mode():
                run(batch)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        if it >= args.warmup:
            times.append(time.perf_counter() - start)
    model.eval()
    flops = count_flops(model, run, batch if framework == "d2lite" else (batch[0][:1], batch[1][:1]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    return {"times": times, "peak_mb": peak, "flops": flops, **counts}


def _child(framework, args, seed, queue):
    try:
        queue.put(_measure(framework, args, seed))
    except Exception as e:  # reported by the parent, which names the framework
        queue.put({"error": f"{type(e).__name__}: {e}"})


def measure_in_child(framework: str, args: argparse.Namespace, seed: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(framework, args, seed, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(f"{framework} benchmark failed: {result['error']}")
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
    results = {f: {"times": []} for f in frameworks}
    for r in range(args.rounds):
        for f in frameworks:
            out = measure_in_child(f, args, seed=r)
            results[f]["times"] += out.pop("times")
            results[f].update(out)
    peak = matmul_peak_gflops(args.threads)
    unit = "s/iter" if args.task == "train" else "s/image"
    mult = 3.0 if args.task == "train" else 1.0  # backward costs about twice the forward
    print(f"\n{args.task} at {args.size}x{args.size}, batch {args.batch if args.task == 'train' else 1}, "
          f"{args.threads} threads, device {args.device}; matmul peak {peak:.0f} GFLOP/s")
    print(f"{'framework':<12} {unit:>9} {'peak MB':>9} {'GFLOP/s':>8} {'props/img':>10} {'dets/img':>9}")
    for f, res in results.items():
        med = statistics.median(res["times"])
        n = args.batch if args.task == "train" else 1
        gflops = mult * res["flops"] * n / med / 1e9
        res.update(median=med, gflops=gflops)
        print(f"{f:<12} {med:>9.3f} {res['peak_mb']:>9.0f} {gflops:>8.1f} "
              f"{res.get('proposals', float('nan')):>10.0f} {res.get('detections', float('nan')):>9.1f}")
    if args.compare:
        base, other = results["d2lite"], results[args.compare]
        print(f"ratio d2lite/{args.compare}: time {base['median'] / other['median']:.2f}, "
              f"peak memory {base['peak_mb'] / other['peak_mb']:.2f}")
    return results


def bench_data(args: argparse.Namespace) -> dict[int, float]:
    """Images per second delivered by the training loader with 0 and 2 workers."""
    from d2lite.data import DatasetCatalog, MetadataCatalog, build_detection_train_loader
    from d2lite.data.datasets import register_coco_instances
    from d2lite.data.datasets.synthetic import make_trash_dataset

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="d2lite_bench_"))
    make_trash_dataset(str(root), num_train=64, num_val=0, num_test=0, image_size=args.size, seed=0)
    name = "benchmark_trash_train"
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_coco_instances(name, {}, str(root / "train.json"), str(root))
    results = {}
    for workers in (0, 2):
        cfg = load_cfg(args)
        cfg.merge_from_list(["DATASETS.TRAIN", f"('{name}',)", "DATALOADER.NUM_WORKERS", str(workers),
                             "SOLVER.IMS_PER_BATCH", str(args.batch)])
        it = iter(build_detection_train_loader(cfg))
        for _ in range(2):
            next(it)
        start, n = time.perf_counter(), 0
        for _ in range(10 * max(1, args.iters)):
            n += len(next(it))
        results[workers] = n / (time.perf_counter() - start)
        print(f"data loader, {workers} workers: {results[workers]:.1f} images/s")
    return results


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    return bench_data(args) if args.task == "data" else bench_model(args)


if __name__ == "__main__":
    main(sys.argv[1:])
