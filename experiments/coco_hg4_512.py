"""COCO keypoints, the paper's recipe (Newell et al. 2017, Sec. 4.1): 4-stack hourglass, 512 → 128.

Command (COCO 2017 unpacked under $COCO; one machine with all its GPUs):
    python tools/train.py --config=experiments/coco_hg4_512.py --workdir=runs/coco_hg4_512 \
        --strategy=mirrored \
        --config.dataset.train_annotations=$COCO/annotations/person_keypoints_train2017.json \
        --config.dataset.train_images=$COCO/train2017 \
        --config.dataset.val_annotations=$COCO/annotations/person_keypoints_val2017.json \
        --config.dataset.val_images=$COCO/val2017
Several machines: the same command on each with --strategy=multi_worker and TF_CONFIG set, the
work dir on a file system that every worker can read (only the chief writes there). Rerunning
the command resumes from the newest readable checkpoint.

Hardware assumed: one machine with 4-8 GPUs of >= 16 GB each, mirrored (global batch 32 =
4-8 images per GPU; the model has 138.9 M parameters and 222 G multiply-adds per 512x512
image). `--config.train.mixed_precision=mixed_bfloat16` (or `mixed_float16` with loss scaling)
and `--config.train.jit_compile=True` trade exactness for speed on GPUs that support them.

Settings (paper Sec. 4.1, pose-ae-train): 4 stacks, official widths 256-384-512-640-768 without
BatchNorm, input 512 / output 128 (stride 4, σ = 2), batch 32, Adam 2e-4 dropped to 1e-5 after
100k iterations (paper text; the paper gives no total, 200k here), loss weights heatmap 1,
pull 1e-3, push 1e-3 with the exp push, crowd and unlabelled people masked, official
augmentation (rotation ±30°, scale 0.75-1.25, flip, colour jitter).

Expected result: the paper's single-scale COCO test-dev AP 0.566 (0.628 with refinement by a
single-person model, not part of this package; multi-scale 0.630). Training-time evaluation uses
the first 500 val2017 images for speed (`--config.eval.max_images=0` for all 5000).

Variants:
    :smoke  a tiny model for a few steps on ../shared/data/coco_mini_train2017 (train = val),
            resolved from the repository root, for tests and CI.
"""

from __future__ import annotations

import pathlib

import ml_collections

from associative_embedding.tasks.pose.config import (
    apply_paper_recipe,
    base_config,
    shrink_for_smoke,
)

# ../shared/data beside the repository (the experiments folder's parent), not the CWD.
SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO_MINI = SHARED_DATA / "coco_mini_train2017"


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config()
    config.dataset.kind = "coco"
    config.dataset.keypoints = "coco"
    config.dataset.ignore = "crowd_and_unlabelled"
    # train/val paths come from --config.dataset.* flags (see the docstring).

    apply_paper_recipe(config)

    if variant == "smoke":
        config.dataset.train_annotations = str(COCO_MINI / "person_keypoints_train2017.json")
        config.dataset.train_images = str(COCO_MINI / "images")
        config.dataset.val_annotations = config.dataset.train_annotations
        config.dataset.val_images = config.dataset.train_images
        shrink_for_smoke(config)
    elif variant:
        raise ValueError(f"unknown variant {variant!r}; choose '' or 'smoke'")
    return config

