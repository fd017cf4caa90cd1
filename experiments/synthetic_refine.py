"""The refinement network on the synthetic people, on a CPU in minutes.

Command:
    python tools/train.py --config=experiments/synthetic_refine.py --workdir=runs/synthetic_refine

Hardware assumed: 2 CPU cores, no GPU. Data: the synthetic people of
experiments/synthetic_pose.py (5000 train / 500 val images of 256 x 256, generated into
WORKDIR/synthetic on the first run, ~30 s; pass --config.dataset.synthetic_dir to share one
copy with synthetic_pose), cropped one person at a time by the refinement crop rule
(tasks/refinement/data.py).

Expected result (measured on this 2-core machine while other jobs shared it, load ~5; the
synthetic data already generated): 1000 steps of batch 32 at ~55 img/s (bursts of ~120 img/s
when the machine was quiet) took 10.8 minutes wall including three extra evaluations
(--config.eval.every_steps=250), and the final evaluation on the 1717 people of the 500 val
images (ground-truth keypoint-box crops, one detection per person) gave
    AP 0.276, AP50 0.611, AP75 0.226, mean OKS 0.608
(AP 0.013 / 0.178 / 0.257 at steps 250 / 500 / 750). Expect ~5 minutes on a quiet machine,
plus ~35 s to generate the data on the first run.
Variants: ':smoke' (2 steps of a tiny model on 16 tiny images, for CI).

Choices (as experiments/synthetic_pose.py, for the same measured reasons): a 2-stack hourglass
with BatchNorm at 128 input (32 x 32 heatmaps, σ = 1), sub-pixel Gaussian targets with the
Taylor decoder, heatmap loss weighted 1 + 10 * target, Adam 4e-3 with warm-up and cosine decay,
batch 32, no flip augmentation (the synthetic people's left/right limbs differ by colour).
"""

from __future__ import annotations

import ml_collections

from associative_embedding.tasks.pose.config import shrink_for_smoke
from associative_embedding.tasks.refinement.trainer import refinement_base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = refinement_base_config()
    config.dataset.kind = "synthetic"
    config.dataset.keypoints = "coco"
    # Exactly the default splits of tools/make_synthetic.py and experiments/synthetic_pose.py.
    config.dataset.synthetic_num_train = 5000
    config.dataset.synthetic_num_val = 500
    config.dataset.synthetic_image_size = 256

    config.model.update(
        num_stacks=2, widths=(32, 48, 64, 80, 96), stem_widths=(16, 32), feature_width=0,
        tag_dim=0, batch_norm=True,
    )
    config.codec.update(
        input_size=128, output_stride=4, sigma=1.0, subpixel_targets=True, adjust="taylor"
    )
    config.input.update(
        max_rotation_degrees=30.0, scale_range=(0.75, 1.25), max_translation=0.1,
        flip_probability=0.0,
    )
    config.loss.heatmap_foreground_weight = 10.0
    config.optimizer.update(
        learning_rate=4e-3, schedule="cosine", final_learning_rate=1e-5, warmup_steps=100
    )
    config.train.update(
        global_batch_size=32, num_steps=1000, log_every=50, checkpoint_every=500,
        time_limit_minutes=0.0,
    )
    config.eval.update(every_steps=0, max_images=0, flip=False)
    config.refine.update(min_side=60.0, margin=1.3, crop_size=0, min_joints=1,
                         eval_batch_size=64)

    if variant == "smoke":
        config.dataset.synthetic_num_train = 16
        config.dataset.synthetic_num_val = 4
        config.dataset.synthetic_image_size = 128
        shrink_for_smoke(config)
    elif variant:
        raise ValueError(f"unknown variant {variant!r}; choose '' or 'smoke'")
    return config
