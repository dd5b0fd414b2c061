"""The tiny Faster R-CNN learns to find clear rectangles: AP50 on its training images >= 0.9."""
import pytest
import torch

from d2lite.config import get_cfg
from d2lite.modeling import build_model
from d2lite.structures import Boxes, Instances, pairwise_iou

# BGR colours of the two classes.
COLORS = {0: (40, 40, 230), 1: (230, 60, 40)}


def make_image(height, width, objects, seed):
    g = torch.Generator().manual_seed(seed)
    image = (torch.rand(3, height, width, generator=g) * 60 + 100).to(torch.uint8)
    for (x0, y0, x1, y1), c in objects:
        image[:, y0:y1, x0:x1] = torch.tensor(COLORS[c], dtype=torch.uint8)[:, None, None]
    inst = Instances((height, width))
    inst.gt_boxes = Boxes(torch.tensor([o[0] for o in objects], dtype=torch.float32))
    inst.gt_classes = torch.tensor([o[1] for o in objects], dtype=torch.int64)
    return {"image": image, "instances": inst, "height": height, "width": width}


def average_precision_50(predictions, ground_truths, cls):
    """101-point interpolated AP at IoU 0.5 of one class (COCO's recall grid)."""
    detections = []
    for i, pred in enumerate(predictions):
        mask = pred.pred_classes == cls
        detections += [(s.item(), i, b) for s, b in zip(pred.scores[mask], pred.pred_boxes[mask])]
    detections.sort(key=lambda d: -d[0])
    num_gt = sum(int((g.gt_classes == cls).sum()) for g in ground_truths)
    matched, hits = set(), []
    for _, i, box in detections:
        gt = ground_truths[i]
        gt_ids = torch.nonzero(gt.gt_classes == cls).flatten().tolist()
        ious = pairwise_iou(Boxes(box[None]), gt.gt_boxes[gt.gt_classes == cls])[0]
        best = int(torch.argmax(ious)) if gt_ids else -1
        hit = best >= 0 and ious[best] >= 0.5 and (i, gt_ids[best]) not in matched
        if hit:
            matched.add((i, gt_ids[best]))
        hits.append(float(hit))
    tp = torch.tensor(hits).cumsum(0)
    precision = tp / torch.arange(1, len(hits) + 1)
    recall = tp / num_gt
    return sum(
        precision[recall >= t].max().item() if (recall >= t).any() else 0.0
        for t in torch.linspace(0, 1, 101)
    ) / 101


def test_average_precision_helper():
    gt = make_image(32, 32, [((0, 0, 10, 10), 0), ((20, 20, 30, 30), 0)], 0)["instances"]
    pred = Instances((32, 32))
    pred.pred_boxes = Boxes(torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 31]]))
    pred.scores = torch.tensor([0.9, 0.8, 0.7])
    pred.pred_classes = torch.tensor([0, 0, 0])
    # Precision 1 up to recall 0.5, then 2/3 at recall 1.
    expected = (51 * 1.0 + 50 * 2 / 3) / 101
    assert average_precision_50([pred], [gt], 0) == pytest.approx(expected)
    assert average_precision_50([pred], [gt], 1) == 0.0


@pytest.fixture
def one_thread():
    # Two threads on a busy 2-core machine are ~10x slower than one for these tiny tensors.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_tiny_model_overfits_rectangles(one_thread):
    torch.manual_seed(0)
    data = [
        make_image(64, 80, [((8, 10, 30, 40), 0), ((45, 20, 75, 44), 1)], 1),
        make_image(72, 64, [((20, 30, 50, 60), 1)], 2),
        make_image(64, 64, [((5, 5, 25, 20), 0), ((34, 34, 58, 60), 0)], 3),
    ]
    cfg = get_cfg()
    cfg.merge_from_file("model_zoo/tiny/faster_rcnn_tiny.yaml")
    model = build_model(cfg).train()
    base_lr, warmup, max_iter = 0.02, 20, 150
    optimizer = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=0.9, weight_decay=1e-4)
    totals = []
    for it in range(max_iter):
        for group in optimizer.param_groups:
            group["lr"] = base_lr * min(1.0, (it + 1) / warmup)
        total = sum(model(data).values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert sum(totals[-10:]) < 0.25 * sum(totals[:10])
    model.eval()
    with torch.no_grad():
        outputs = model([{"image": d["image"]} for d in data])
    predictions = [o["instances"] for o in outputs]
    ground_truths = [d["instances"] for d in data]
    for cls in (0, 1):
        assert average_precision_50(predictions, ground_truths, cls) >= 0.9, cls
