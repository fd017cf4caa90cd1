"""Overfit check on real photos: memorise a small COCO-format keypoint set, evaluate on it.

Command (default data: ../shared/data/coco_mini_train2017 beside the repository):
    python tools/train.py --config=experiments/coco_overfit.py --workdir=runs/coco_overfit
Any COCO-format keypoint file (the validation split defaults to the training split when
--config.dataset.val_annotations/val_images are left empty, see tasks.pose.inputs):
    python tools/train.py --config=experiments/coco_overfit.py --workdir=runs/overfit \
        --config.dataset.train_annotations=ANN.json --config.dataset.train_images=IMAGES

What it checks: the whole real-photo chain (COCO reader, crowd and unlabelled-people masks,
flip with the COCO joint swap, the augmentation affine, targets, losses, decoder, flip test,
back-projection to the photo, pycocotools) can learn a few photos and score them. AP on the
training images says nothing about generalisation. Flip augmentation stays on and evaluation
uses the flip test, so a wrong joint swap shows up as a lower AP (averaging a prediction with
a wrongly re-indexed mirror one); a coordinate offset anywhere between the photo and the
back-projected joints does too, since the network memorises joint positions in the photo.

Hardware assumed: 2 CPU cores, no GPU. Variants: ':smoke' (2 steps of a tiny model, for CI).

Expected result (measured on 2 CPU cores shared with a test run; the default data: the 28
person images of coco_mini_train2017, 3000 steps of batch 8 at 128 input, evaluated with
--config.eval.every_steps=1000): AP on the memorised images 0.344 at step 1000, 0.500 at 2000
and 0.524 at 3000 (AP50 0.744; ground-truth-heatmap diagnostic 0.834), 8 min 18 s in all.
The same command on two other small COCO-format sets, passed by the flags above (2 CPU cores
shared with another training run, so the wall times are upper bounds):
  * ../shared/data/mmpose_samples/coco/test_coco.json (4 COCO val2017 photos, 12 annotated
    people): AP 0.912 (AP50 1.000; diagnostic 0.990), 9 min 58 s;
  * ../shared/data/mmpose_samples/ochuman/test_ochuman.json (3 OCHuman photos, 5 heavily
    overlapping people): AP 1.000, 11 min 48 s.
Before the fixes it was written for (heatmap peaks decoded in the padding of non-square
photos; the training crop placed differently from test-time preprocessing) the same check
gave AP 0.0000.

Departures from the official recipe (experiments/coco_hg4_512.py), each a config field:
  * input.placement = 'top_left': the photo sits where test-time preprocessing puts it (long
    side resized, padding right/bottom) instead of centred. A network that memorises photos
    learns them where training shows them.
  * No rotation, scale or translation augmentation (official: +-30 deg, 0.75-1.25, 0.2) and
    no colour jitter: the network memorises 28 photos and their mirror images.
  * input.cache_decoded_images: JPEG decoding was ~85 % of the input pipeline's CPU time.
  * eval.flip = True (flip test; official single-scale evaluation has it off).
  * The embedded synthetic recipe's network and loss (experiments/synthetic_pose.py): small
    2-stack hourglass with BatchNorm at 128 input, sub-pixel targets with the Taylor decoder,
    heatmap loss weighted 1 + 10 * target, hinge push at 5e-2, Adam 4e-3 with warm-up and
    cosine decay.
"""

from __future__ import annotations

import pathlib

import ml_collections

from associative_embedding.tasks.pose.config import base_config, shrink_for_smoke

# ../shared/data beside the repository (the experiments folder's parent), not the CWD.
SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO_MINI = SHARED_DATA / "coco_mini_train2017"


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config()
    config.dataset.kind = "coco"
    config.dataset.keypoints = "coco"
    config.dataset.ignore = "crowd_and_unlabelled"
    config.dataset.train_annotations = str(COCO_MINI / "person_keypoints_train2017.json")
    config.dataset.train_images = str(COCO_MINI / "images")
    # Empty: validate on the training split (tasks.pose.inputs.resolve_split_paths).
    config.dataset.val_annotations = ""
    config.dataset.val_images = ""

    config.model.num_stacks = 2
    config.model.widths = (32, 48, 64, 80, 96)
    config.model.stem_widths = (16, 32)
    config.model.batch_norm = True
    # As the embedded synthetic default: 2-D tags with coordinate channels in the heads.
    config.model.tag_dim = 2
    config.model.coordinate_channels = True

    config.codec.input_size = 128
    config.codec.output_stride = 4
    config.codec.sigma = 2.0
    config.codec.subpixel_targets = True
    config.codec.adjust = "taylor"
    config.input.placement = "top_left"
    # The COCO flip with joint swap stays on (official probability).
    config.input.flip_probability = 0.5
    config.input.max_rotation_degrees = 0.0
    config.input.scale_range = (1.0, 1.0)
    config.input.max_translation = 0.0
    config.input.color_jitter = False
    config.input.cache_decoded_images = True
    config.input.shuffle_buffer_size = 64

    config.loss.push_type = "hinge"
    config.loss.pull_weight = 5e-2
    config.loss.push_weight = 5e-2
    config.loss.heatmap_foreground_weight = 10.0

    config.optimizer.learning_rate = 4e-3
    config.optimizer.schedule = "cosine"
    config.optimizer.final_learning_rate = 1e-5
    config.optimizer.warmup_steps = 100

    config.train.global_batch_size = 8
    config.train.num_steps = 3000
    config.train.log_every = 100
    config.train.checkpoint_every = 1000
    config.train.time_limit_minutes = 0.0

    config.eval.every_steps = 0
    config.eval.flip = True
    config.eval.max_images = 0

    if variant == "smoke":
        shrink_for_smoke(config)
    elif variant:
        raise ValueError(f"unknown variant {variant!r}; choose '' or 'smoke'")
    return config
