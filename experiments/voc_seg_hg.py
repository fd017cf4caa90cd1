"""Paper Table 5: PASCAL VOC 2012 instance segmentation with associative embedding.

Paper (Sec. 4.2): mAP^r 35.1 at IoU 0.5 and 26.0 at IoU 0.7 on VOC 2012 val (1,449 images).
Recipe: 4-stack hourglass, 256 input / 64 output, one detection and one tag channel per VOC
class (20), grouping loss weight 1e-4 (the printed, summed formula), objects outside a size range
masked out of the loss together with VOC's void/boundary pixels, trained from scratch on COCO
(3 days) then fine-tuned on VOC train (12 hours); tested at three scales (x0.5, x1, x1.5)
whose instance proposals are merged by NMS.

Commands (two stages; the second starts from the first's weights):
    # 1. COCO pre-training on the 20 VOC classes (COCO ids of the VOC categories).
    python tools/train.py --config=experiments/voc_seg_hg.py:coco --workdir=runs/voc_seg_coco \
        --config.dataset.train_annotations=COCO/annotations/instances_train2017.json \
        --config.dataset.train_images=COCO/train2017 \
        --config.dataset.val_annotations=COCO/annotations/instances_val2017.json \
        --config.dataset.val_images=COCO/val2017
    # 2. Fine-tuning on VOC 2012 train, evaluated on VOC 2012 val.
    python tools/train.py --config=experiments/voc_seg_hg.py --workdir=runs/voc_seg \
        --config.dataset.voc_root=VOCdevkit/VOC2012 \
        --config.train.init_checkpoint=runs/voc_seg_coco/best/model

Expected: mAP^r@0.5 ~0.35, mAP^r@0.7 ~0.26 (paper); not measured here (no GPU, no VOC/COCO
instance data on the development machine). ':smoke' / ':coco_smoke' run a few steps on tiny
data for CI.
"""

from __future__ import annotations

import ml_collections

from associative_embedding.tasks.segmentation.config import (
    segmentation_base_config,
    shrink_segmentation_for_smoke,
)

# COCO category ids of the 20 PASCAL VOC classes, in VOC order (aeroplane ... tvmonitor).
COCO_IDS_OF_VOC_CLASSES = (5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = segmentation_base_config()
    config.dataset.kind = "voc"
    config.dataset.num_categories = 20
    # Paper: 256 input / 64 output, weight 1e-4, sum normalisation, exp push (the defaults).
    config.codec.input_size = 256
    config.input.min_instance_size = 16.0
    config.input.max_instance_size = 256.0
    config.optimizer.learning_rate = 2e-4
    config.optimizer.schedule = "step"
    config.optimizer.decay_step = 100_000
    config.train.global_batch_size = 32
    config.train.num_steps = 150_000
    config.train.checkpoint_every = 2000
    config.eval.every_steps = 10_000
    config.eval.scales = (0.5, 1.0, 1.5)

    coco = variant.startswith("coco")
    if coco:
        config.dataset.kind = "coco"
        config.dataset.category_ids = COCO_IDS_OF_VOC_CLASSES
        config.eval.max_images = 500
    if variant in ("smoke", "coco_smoke"):
        shrink_segmentation_for_smoke(config)
        config.input.min_instance_size = 0.0
    elif variant not in ("", "coco"):
        raise ValueError(f"unknown variant {variant!r}; choose '', 'coco', 'smoke', 'coco_smoke'")
    return config
