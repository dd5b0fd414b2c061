"""Every config key d2lite knows, with its default (Detectron2's, where Detectron2 has the key).

YAML files and command-line overrides may only change these keys. Keys marked "d2lite" are
additions beside Detectron2's; everything else has Detectron2's name and default value, and
every key of Detectron2 0.6's ``get_cfg()`` is here. Keys of heads d2lite does not have
(``RETINANET``, ``ROI_MASK_HEAD``, ``ROI_KEYPOINT_HEAD``, ``ROI_BOX_CASCADE_HEAD``,
``SEM_SEG_HEAD``, ``PANOPTIC_FPN``, ``TEST.KEYPOINT_OKS_SIGMAS``) are accepted and have no effect.
"""
from .config import CfgNode as CN

_C = CN()

# Config format version; Detectron2 configs say 2.
_C.VERSION = 2

_C.MODEL = CN()
# Name in META_ARCH_REGISTRY of the model to build.
_C.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
# Device for the model and its inputs; falls back to the CPU (with one warning) without CUDA.
_C.MODEL.DEVICE = "cuda"
# Checkpoint (path, URL or detectron2:// path) loaded when not resuming.
_C.MODEL.WEIGHTS = ""
# Per-channel mean subtracted from input pixels, in INPUT.FORMAT channel order.
_C.MODEL.PIXEL_MEAN = [103.530, 116.280, 123.675]
# Per-channel std the centred pixels are divided by (1.0 for Caffe2-style weights).
_C.MODEL.PIXEL_STD = [1.0, 1.0, 1.0]
# Whether to predict masks / keypoints; accepted for YAML compatibility, must stay False.
_C.MODEL.MASK_ON = False
_C.MODEL.KEYPOINT_ON = False
# Read proposals from DATASETS.PROPOSAL_FILES_* instead of running an RPN.
_C.MODEL.LOAD_PROPOSALS = False
# d2lite: wrap the model in torch.compile (pays off on some GPUs, off by default).
_C.MODEL.COMPILE = False
# d2lite: on the CPU, build_model flushes denormal floats to zero (they can slow training ~15x).
_C.MODEL.FLUSH_DENORMAL = True

_C.MODEL.BACKBONE = CN()
# Name in BACKBONE_REGISTRY of the backbone builder.
_C.MODEL.BACKBONE.NAME = "build_resnet_backbone"
# Freeze the stem (1) and the first N-1 ResNet stages; 0 trains everything.
_C.MODEL.BACKBONE.FREEZE_AT = 2

_C.MODEL.RESNETS = CN()
# 18, 34 (basic blocks), 50, 101, 152 (bottlenecks).
_C.MODEL.RESNETS.DEPTH = 50
# Stage outputs to return, among stem, res2 .. res5.
_C.MODEL.RESNETS.OUT_FEATURES = ["res4"]
# 1 for ResNet, 32 for ResNeXt-32xNd.
_C.MODEL.RESNETS.NUM_GROUPS = 1
# FrozenBN, BN, SyncBN, GN or "" (none).
_C.MODEL.RESNETS.NORM = "FrozenBN"
# Bottleneck width per group: 64 for ResNet, 4 or 8 for ResNeXt.
_C.MODEL.RESNETS.WIDTH_PER_GROUP = 64
# Stride in the 1x1 conv of a bottleneck (MSRA weights) instead of the 3x3 (FAIR/torchvision).
_C.MODEL.RESNETS.STRIDE_IN_1X1 = True
# Dilation of res5 (1 or 2).
_C.MODEL.RESNETS.RES5_DILATION = 1
# Output channels of res2; must be 64 for ResNet-18/34.
_C.MODEL.RESNETS.RES2_OUT_CHANNELS = 256
# Output channels of the stem.
_C.MODEL.RESNETS.STEM_OUT_CHANNELS = 64
# Deformable convs are not supported; the keys exist so Detectron2 YAMLs merge.
_C.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False, False, False, False]
_C.MODEL.RESNETS.DEFORM_MODULATED = False
_C.MODEL.RESNETS.DEFORM_NUM_GROUPS = 1

_C.MODEL.FPN = CN()
# Backbone features the FPN takes, finest first.
_C.MODEL.FPN.IN_FEATURES = []
# Channels of every FPN output.
_C.MODEL.FPN.OUT_CHANNELS = 256
# Norm of the lateral and output convs: "" (none), GN, BN, SyncBN.
_C.MODEL.FPN.NORM = ""
# How a top-down feature joins a lateral one: "sum" or "avg".
_C.MODEL.FPN.FUSE_TYPE = "sum"

# d2lite: the test backbone of model_zoo/tiny (two conv stages, p2 and p3).
_C.MODEL.TINY = CN()
# Channels of both TinyBackbone outputs.
_C.MODEL.TINY.OUT_CHANNELS = 32

_C.MODEL.PROPOSAL_GENERATOR = CN()
# Name in PROPOSAL_GENERATOR_REGISTRY; "PrecomputedProposals" reads them from files.
_C.MODEL.PROPOSAL_GENERATOR.NAME = "RPN"
# Proposals smaller than this (either side, input pixels) are dropped.
_C.MODEL.PROPOSAL_GENERATOR.MIN_SIZE = 0

_C.MODEL.ANCHOR_GENERATOR = CN()
# Name in ANCHOR_GENERATOR_REGISTRY.
_C.MODEL.ANCHOR_GENERATOR.NAME = "DefaultAnchorGenerator"
# Anchor sizes (sqrt of area, input pixels): one list per feature map, or one for all.
_C.MODEL.ANCHOR_GENERATOR.SIZES = [[32, 64, 128, 256, 512]]
# Anchor height/width ratios: one list per feature map, or one for all.
_C.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
# Rotated-anchor angles; unused by Faster R-CNN, kept for YAML compatibility.
_C.MODEL.ANCHOR_GENERATOR.ANGLES = [[-90, 0, 90]]
# Anchor centre offset within a cell, in [0, 1): 0.0 is Detectron2's, 0.5 torchvision's.
_C.MODEL.ANCHOR_GENERATOR.OFFSET = 0.0

_C.MODEL.RPN = CN()
# Name in RPN_HEAD_REGISTRY.
_C.MODEL.RPN.HEAD_NAME = "StandardRPNHead"
# Features the RPN runs on.
_C.MODEL.RPN.IN_FEATURES = ["res4"]
# Anchors sticking out of the image by more than this are ignored; -1 keeps all (legacy).
_C.MODEL.RPN.BOUNDARY_THRESH = -1
# IoU thresholds and labels of the anchor matcher: <0.3 negative, 0.3-0.7 ignored, >=0.7 positive.
_C.MODEL.RPN.IOU_THRESHOLDS = [0.3, 0.7]
_C.MODEL.RPN.IOU_LABELS = [0, -1, 1]
# Anchors sampled per image for the RPN loss.
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
# Target fraction of positive anchors in that sample.
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5
# "smooth_l1" or "giou".
_C.MODEL.RPN.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.RPN.BBOX_REG_LOSS_WEIGHT = 1.0
# Weights (dx, dy, dw, dh) of the RPN box transform.
_C.MODEL.RPN.BBOX_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
# Beta of the smooth-L1 loss; 0 means L1.
_C.MODEL.RPN.SMOOTH_L1_BETA = 0.0
# Multiplies both RPN losses.
_C.MODEL.RPN.LOSS_WEIGHT = 1.0
# Top-scoring anchors kept per feature map before NMS (per image).
_C.MODEL.RPN.PRE_NMS_TOPK_TRAIN = 12000
_C.MODEL.RPN.PRE_NMS_TOPK_TEST = 6000
# Proposals kept per image after NMS.
_C.MODEL.RPN.POST_NMS_TOPK_TRAIN = 2000
_C.MODEL.RPN.POST_NMS_TOPK_TEST = 1000
# IoU threshold of the proposal NMS.
_C.MODEL.RPN.NMS_THRESH = 0.7
# Channels of the RPN head's conv layers; -1 means the input channels.
_C.MODEL.RPN.CONV_DIMS = [-1]

_C.MODEL.ROI_HEADS = CN()
# Name in ROI_HEADS_REGISTRY.
_C.MODEL.ROI_HEADS.NAME = "Res5ROIHeads"
# Foreground classes (background not counted).
_C.MODEL.ROI_HEADS.NUM_CLASSES = 80
# Features the box head pools from.
_C.MODEL.ROI_HEADS.IN_FEATURES = ["res4"]
# Proposal/GT IoU below 0.5 is background, above is foreground.
_C.MODEL.ROI_HEADS.IOU_THRESHOLDS = [0.5]
_C.MODEL.ROI_HEADS.IOU_LABELS = [0, 1]
# Proposals sampled per image for the box-head loss.
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
# Target fraction of foreground among them.
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25
# Detections scoring below this are dropped at test time.
_C.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.05
# IoU threshold of the per-class NMS at test time.
_C.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.5
# Add the ground-truth boxes to the proposals during training.
_C.MODEL.ROI_HEADS.PROPOSAL_APPEND_GT = True

_C.MODEL.ROI_BOX_HEAD = CN()
# Name in ROI_BOX_HEAD_REGISTRY.
_C.MODEL.ROI_BOX_HEAD.NAME = ""
# "smooth_l1" or "giou".
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT = 1.0
# Weights (dx, dy, dw, dh) of the box-head box transform.
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
# Beta of the smooth-L1 loss; 0 means L1.
_C.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA = 0.0
# Output size of the ROI pooler.
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
# Sampling points per bin of ROIAlign; 0 means adaptive.
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0
# ROIAlignV2 (aligned), ROIAlign (legacy, unaligned) or ROIPool.
_C.MODEL.ROI_BOX_HEAD.POOLER_TYPE = "ROIAlignV2"
# Conv and FC layers of FastRCNNConvFCHead and their widths.
_C.MODEL.ROI_BOX_HEAD.NUM_FC = 0
_C.MODEL.ROI_BOX_HEAD.FC_DIM = 1024
_C.MODEL.ROI_BOX_HEAD.NUM_CONV = 0
_C.MODEL.ROI_BOX_HEAD.CONV_DIM = 256
# Norm of the head's conv layers: "" (none), GN, BN.
_C.MODEL.ROI_BOX_HEAD.NORM = ""
# Predict one box per proposal instead of one per class.
_C.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG = False
# Train the box head on the proposals refined by the box head itself (detached) instead of the RPN's.
_C.MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES = False
# Classification loss: per-class sigmoid cross-entropy instead of softmax, and the federated
# loss (LVIS style: only classes sampled by frequency^POWER, FED_LOSS_NUM_CLASSES per image).
_C.MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE = False
_C.MODEL.ROI_BOX_HEAD.USE_FED_LOSS = False
_C.MODEL.ROI_BOX_HEAD.FED_LOSS_FREQ_WEIGHT_POWER = 0.5
_C.MODEL.ROI_BOX_HEAD.FED_LOSS_NUM_CLASSES = 50

# Mask head keys are read by no d2lite code (no masks): accepted with no effect.
_C.MODEL.ROI_MASK_HEAD = CN()
_C.MODEL.ROI_MASK_HEAD.NAME = "MaskRCNNConvUpsampleHead"
_C.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_MASK_HEAD.NUM_CONV = 0
_C.MODEL.ROI_MASK_HEAD.CONV_DIM = 256
_C.MODEL.ROI_MASK_HEAD.NORM = ""
_C.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK = False
_C.MODEL.ROI_MASK_HEAD.POOLER_TYPE = "ROIAlignV2"

# The groups below belong to heads d2lite does not have (cascade, keypoint, semantic/panoptic
# segmentation, RetinaNet). They hold Detectron2's keys and defaults so that scripts setting
# them (cfg.MODEL.RETINANET.NUM_CLASSES = 10) and config.yaml files dumped by Detectron2 load;
# no d2lite code reads them, so they have no effect.
_C.MODEL.ROI_BOX_CASCADE_HEAD = CN()
_C.MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS = (
    (10.0, 10.0, 5.0, 5.0),
    (20.0, 20.0, 10.0, 10.0),
    (30.0, 30.0, 15.0, 15.0),
)
_C.MODEL.ROI_BOX_CASCADE_HEAD.IOUS = (0.5, 0.6, 0.7)

_C.MODEL.ROI_KEYPOINT_HEAD = CN()
_C.MODEL.ROI_KEYPOINT_HEAD.NAME = "KRCNNConvDeconvUpsampleHead"
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS = (512,) * 8
_C.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = 17
_C.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE = 1
_C.MODEL.ROI_KEYPOINT_HEAD.NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS = True
_C.MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT = 1.0
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE = "ROIAlignV2"

_C.MODEL.SEM_SEG_HEAD = CN()
_C.MODEL.SEM_SEG_HEAD.NAME = "SemSegFPNHead"
_C.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["p2", "p3", "p4", "p5"]
_C.MODEL.SEM_SEG_HEAD.IGNORE_VALUE = 255
_C.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 54
_C.MODEL.SEM_SEG_HEAD.CONVS_DIM = 128
_C.MODEL.SEM_SEG_HEAD.COMMON_STRIDE = 4
_C.MODEL.SEM_SEG_HEAD.NORM = "GN"
_C.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT = 1.0

_C.MODEL.PANOPTIC_FPN = CN()
_C.MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT = 1.0
_C.MODEL.PANOPTIC_FPN.COMBINE = CN({"ENABLED": True})
_C.MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH = 0.5
_C.MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT = 4096
_C.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = 0.5

_C.MODEL.RETINANET = CN()
_C.MODEL.RETINANET.NUM_CLASSES = 80
_C.MODEL.RETINANET.IN_FEATURES = ["p3", "p4", "p5", "p6", "p7"]
_C.MODEL.RETINANET.NUM_CONVS = 4
_C.MODEL.RETINANET.IOU_THRESHOLDS = [0.4, 0.5]
_C.MODEL.RETINANET.IOU_LABELS = [0, -1, 1]
_C.MODEL.RETINANET.PRIOR_PROB = 0.01
_C.MODEL.RETINANET.SCORE_THRESH_TEST = 0.05
_C.MODEL.RETINANET.TOPK_CANDIDATES_TEST = 1000
_C.MODEL.RETINANET.NMS_THRESH_TEST = 0.5
_C.MODEL.RETINANET.BBOX_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
_C.MODEL.RETINANET.FOCAL_LOSS_GAMMA = 2.0
_C.MODEL.RETINANET.FOCAL_LOSS_ALPHA = 0.25
_C.MODEL.RETINANET.SMOOTH_L1_LOSS_BETA = 0.1
_C.MODEL.RETINANET.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.RETINANET.NORM = ""

_C.INPUT = CN()
# Shortest-edge lengths for training; one is drawn per image ("choice") or a range ("range").
_C.INPUT.MIN_SIZE_TRAIN = (800,)
_C.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
# Longest edge cap for training.
_C.INPUT.MAX_SIZE_TRAIN = 1333
# Shortest edge for testing; 0 disables resizing.
_C.INPUT.MIN_SIZE_TEST = 800
# Longest edge cap for testing.
_C.INPUT.MAX_SIZE_TEST = 1333
# "horizontal", "vertical" or "none".
_C.INPUT.RANDOM_FLIP = "horizontal"
# Channel order the model expects: BGR (Caffe2/Detectron2 weights), RGB, L.
_C.INPUT.FORMAT = "BGR"
# Mask format; unused, kept for YAML compatibility.
_C.INPUT.MASK_FORMAT = "polygon"

_C.INPUT.CROP = CN()
# Random crop before resizing during training.
_C.INPUT.CROP.ENABLED = False
# relative_range, relative, absolute or absolute_range.
_C.INPUT.CROP.TYPE = "relative_range"
# Crop size, meaning depends on TYPE.
_C.INPUT.CROP.SIZE = [0.9, 0.9]

_C.DATASETS = CN()
# Registered dataset names to train on.
_C.DATASETS.TRAIN = ()
# Registered dataset names to evaluate on.
_C.DATASETS.TEST = ()
# d2lite: registered dataset names the ValidationLoss hook computes the loss on.
_C.DATASETS.VAL = ()
# d2lite: COCO datasets to register before loaders are built, [[name, json_file, image_root]].
_C.DATASETS.COCO_REGISTER = []
# Precomputed proposal files, one per dataset (with MODEL.LOAD_PROPOSALS).
_C.DATASETS.PROPOSAL_FILES_TRAIN = ()
_C.DATASETS.PROPOSAL_FILES_TEST = ()
# Precomputed proposals kept per image.
_C.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TRAIN = 2000
_C.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TEST = 1000

_C.DATALOADER = CN()
# Data-loading worker processes per training process.
_C.DATALOADER.NUM_WORKERS = 4
# Batch images of similar aspect ratio together (less padding).
_C.DATALOADER.ASPECT_RATIO_GROUPING = True
# TrainingSampler or RepeatFactorTrainingSampler.
_C.DATALOADER.SAMPLER_TRAIN = "TrainingSampler"
# Class-frequency threshold of RepeatFactorTrainingSampler.
_C.DATALOADER.REPEAT_THRESHOLD = 0.0
# Use the square root in the repeat factor (LVIS style).
_C.DATALOADER.REPEAT_SQRT = True
# Drop training images that have no annotation.
_C.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True

_C.SOLVER = CN()
# d2lite: "SGD" (Detectron2's only choice) or "AdamW".
_C.SOLVER.OPTIMIZER = "SGD"
# WarmupMultiStepLR, WarmupCosineLR or WarmupStepWithFixedGammaLR.
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"
# Total training iterations.
_C.SOLVER.MAX_ITER = 40000
# Learning rate after warm-up.
_C.SOLVER.BASE_LR = 0.001
# Final learning rate of the cosine schedule.
_C.SOLVER.BASE_LR_END = 0.0
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False
_C.SOLVER.WEIGHT_DECAY = 0.0001
# Weight decay of norm layers' parameters.
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0
# Learning-rate factor of the multi-step schedule at each step.
_C.SOLVER.GAMMA = 0.1
# Iterations at which the learning rate is multiplied by GAMMA.
_C.SOLVER.STEPS = (30000,)
# Decays of WarmupStepWithFixedGammaLR.
_C.SOLVER.NUM_DECAYS = 3
# Warm-up: starts at BASE_LR * WARMUP_FACTOR, "linear" or "constant", for WARMUP_ITERS.
_C.SOLVER.WARMUP_FACTOR = 1.0 / 1000
_C.SOLVER.WARMUP_ITERS = 1000
_C.SOLVER.WARMUP_METHOD = "linear"
# Whether WarmupStepWithFixedGammaLR rescales the interval after warm-up.
_C.SOLVER.RESCALE_INTERVAL = False
# Save a checkpoint every this many iterations.
_C.SOLVER.CHECKPOINT_PERIOD = 5000
# Images per step over all processes.
_C.SOLVER.IMS_PER_BATCH = 16
# World size the config was written for; 0 disables auto-scaling of LR, batch and schedule.
_C.SOLVER.REFERENCE_WORLD_SIZE = 0
# Learning-rate factor and weight decay of bias parameters (None: WEIGHT_DECAY).
_C.SOLVER.BIAS_LR_FACTOR = 1.0
_C.SOLVER.WEIGHT_DECAY_BIAS = None

_C.SOLVER.CLIP_GRADIENTS = CN()
_C.SOLVER.CLIP_GRADIENTS.ENABLED = False
# "value" (clip each element), "norm" (per parameter) or "full_model" (one global norm).
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "value"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
# p of the norm for "norm" and "full_model".
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0

_C.SOLVER.AMP = CN()
# Mixed precision: float16 with a GradScaler on CUDA, bfloat16 on CPUs that compute it natively.
_C.SOLVER.AMP.ENABLED = False

_C.TEST = CN()
# Expected results for verify_results: [["bbox", "AP", 38.5, 0.2], ...].
_C.TEST.EXPECTED_RESULTS = []
# Evaluate every this many iterations (and after the last); 0 only at the end.
_C.TEST.EVAL_PERIOD = 0
# Maximum detections kept per image.
_C.TEST.DETECTIONS_PER_IMAGE = 100
# Keypoint OKS sigmas for COCO keypoint evaluation; accepted, no effect (no keypoints).
_C.TEST.KEYPOINT_OKS_SIGMAS = []
# d2lite: compute the loss on DATASETS.VAL every this many iterations; 0 disables.
_C.TEST.VAL_PERIOD = 0
# d2lite: metric (e.g. "bbox/AP50") that BestCheckpointer and early stopping watch; "" disables.
_C.TEST.BEST_METRIC = ""
# d2lite: "max" or "min": which way the metric improves.
_C.TEST.BEST_MODE = "max"
# d2lite: stop after this many evaluations without improvement of BEST_METRIC; 0 never stops.
_C.TEST.EARLY_STOP_PATIENCE = 0

_C.TEST.AUG = CN()
# Test-time augmentation (GeneralizedRCNNWithTTA): shortest-edge sizes, longest-edge cap, flips.
_C.TEST.AUG.ENABLED = False
_C.TEST.AUG.MIN_SIZES = (400, 500, 600, 700, 800, 900, 1000, 1100, 1200)
_C.TEST.AUG.MAX_SIZE = 4000
_C.TEST.AUG.FLIP = True

_C.TEST.PRECISE_BN = CN()
# Recompute BN statistics before evaluation (BN models only).
_C.TEST.PRECISE_BN.ENABLED = False
_C.TEST.PRECISE_BN.NUM_ITER = 200

# Where checkpoints, logs, metrics.json and pictures go.
_C.OUTPUT_DIR = "./output"
# Random seed; negative picks one from the clock and logs it.
_C.SEED = -1
# torch.backends.cudnn.benchmark; fast for fixed input sizes.
_C.CUDNN_BENCHMARK = False
# Float32 matmul precision on CUDA ("", "highest", "high", "medium").
_C.FLOAT32_PRECISION = ""
# Write training pictures (inputs with GT and proposals) every this many iterations; 0 never.
_C.VIS_PERIOD = 0

# A free-form group for research hacks, as in Detectron2.
_C.GLOBAL = CN()
_C.GLOBAL.HACK = 1.0
