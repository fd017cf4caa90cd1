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

Settings (paper Sec. 4.1, REFERENCE.md): 4 stacks, official widths 256-384-512-640-768 without
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

from associative_embedding.training.config import base_config

# ../shared/data beside the repository (the experiments folder's parent), not the CWD.
SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO_MINI = SHARED_DATA / "coco_mini_train2017"


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config()
    config.dataset.kind = "coco"
    config.dataset.keypoints = "coco"
    config.dataset.ignore = "crowd_and_unlabelled"
    # train/val paths come from --config.dataset.* flags (see the docstring).

    config.model.num_stacks = 4
    config.model.widths = (256, 384, 512, 640, 768)
    config.model.stem_widths = (64, 128)
    config.model.feature_width = 0
    config.model.tag_dim = 1
    config.model.batch_norm = False

    config.input.input_size = 512
    config.input.output_stride = 4
    config.input.sigma = 0.0  # output_size / 64 = 2 at 128
    config.input.max_people = 30

    config.loss.heatmap_weight = 1.0
    config.loss.pull_weight = 1e-3
    config.loss.push_weight = 1e-3
    config.loss.push_type = "exp"

    config.optimizer.learning_rate = 2e-4
    config.optimizer.schedule = "step"
    config.optimizer.final_learning_rate = 1e-5
    config.optimizer.decay_step = 100_000
    config.optimizer.warmup_steps = 0
    config.optimizer.clipnorm = 0.0

    config.train.global_batch_size = 32
    config.train.num_steps = 200_000
    config.train.log_every = 100
    config.train.checkpoint_every = 2000

    config.eval.every_steps = 10_000
    config.eval.input_size = 512
    config.eval.max_images = 500
    config.eval.scales = (1.0,)
    config.eval.flip = False

    if variant == "smoke":
        config.dataset.train_annotations = str(COCO_MINI / "person_keypoints_train2017.json")
        config.dataset.train_images = str(COCO_MINI / "images")
        config.dataset.val_annotations = config.dataset.train_annotations
        config.dataset.val_images = config.dataset.train_images
        _make_tiny(config)
    elif variant:
        raise ValueError(f"unknown variant {variant!r}; choose '' or 'smoke'")
    return config


def _make_tiny(config: ml_collections.ConfigDict) -> None:
    """A 2-stack, 16-channel model at 64 input for a few steps (seconds on a CPU)."""
    config.model.num_stacks = 2
    config.model.widths = (16, 16, 16, 16, 16)
    config.model.stem_widths = (8, 16)
    config.model.feature_width = 16
    config.input.input_size = 64
    config.input.shuffle_buffer_size = 64
    config.train.global_batch_size = 2
    config.train.num_steps = 2
    config.train.log_every = 1
    config.train.checkpoint_every = 1
    config.eval.every_steps = 0
    config.eval.input_size = 64
    config.eval.max_images = 4
    config.eval.num_drawn_images = 2
