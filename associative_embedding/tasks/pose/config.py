"""The configuration schema (ml_collections) of multi-person pose experiments.

The model, optimizer and train sections come from `training.config.task_config`; this module
adds the pose dataset, codec, input, loss and eval sections. The `codec` section is the one place
that says the input size, the output stride, the targets' sigma, `max_people` and the grouping
decoder's options: the target encoder (training), the evaluation, predict and export all read
it. Experiments in `experiments/` start from
`base_config()` and override what their paper row or
local recipe needs; `tools/train.py --config=experiments/NAME.py[:variant] --config.a.b=value`
loads them through absl `config_flags`. Every field used by the trainer exists here, so a typo in
an override fails loudly instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ml_collections

from associative_embedding.codec.keypoint_config import decoder_options, keypoint_codec_fields
from associative_embedding.training.config import augmentation_fields, task_config

__all__ = [
    "apply_paper_recipe",
    "base_config",
    "codec_settings",
    "decoder_options",
    "shrink_for_smoke",
]


def base_config() -> ml_collections.ConfigDict:
    """Defaults = the official pose-ae-train recipe (paper Sec. 4.1) on COCO keypoints."""
    config = task_config("pose")

    config.dataset = ml_collections.ConfigDict(
        dict(
            # 'coco' (any COCO-format keypoint file), 'mpii' (official .mat or JSON conversion)
            # or 'synthetic' (generated into WORKDIR/synthetic when missing).
            kind="coco",
            keypoints="coco",  # KeypointInfo name: coco | crowdpose | mpii | posetrack
            train_annotations="",
            train_images="",
            val_annotations="",
            val_images="",
            ignore="crowd_and_unlabelled",  # or 'crowd' (the official code's choice)
            # Decode-check every image up front and skip (and list in WORKDIR/
            # skipped_images.txt) the bad ones; False stops before the first step naming them.
            skip_bad_images=False,
            # Raise (naming the file and ids) instead of skipping invalid annotations.
            strict_annotations=False,
            # Synthetic people (kind='synthetic').
            synthetic_dir="",  # '' = WORKDIR/synthetic
            synthetic_num_train=2000,
            synthetic_num_val=200,
            synthetic_image_size=256,
            synthetic_seed=0,
        )
    )

    # What the target encoder and the grouping decoder share, said once
    # (codec.keypoint_config.keypoint_codec_fields documents each field).
    config.codec = ml_collections.ConfigDict(keypoint_codec_fields())

    config.input = ml_collections.ConfigDict(
        dict(
            # Decode each training image once and keep it in memory (small datasets only).
            cache_decoded_images=False,
            **augmentation_fields(),
        )
    )

    config.loss = ml_collections.ConfigDict(
        dict(
            heatmap_weight=1.0,
            pull_weight=1e-3,
            push_weight=1e-3,
            push_type="exp",
            # 0 = official plain MSE; w > 0 weights each pixel by 1 + w * target.
            heatmap_foreground_weight=0.0,
        )
    )

    config.eval = ml_collections.ConfigDict(
        dict(
            every_steps=5000,  # 0 = only at the end
            max_images=0,  # 0 = all validation images
            flip=False,
            scales=(1.0,),
            fusion="official",
            gt_detection_diagnostic=True,  # also AP with GT heatmaps + predicted tags
            num_drawn_images=8,
            # Drawings only (metrics use everyone): people scoring below this are not drawn;
            # visualization.DEFAULT_DRAW_THRESHOLD says why 0.3.
            draw_threshold=0.3,
        )
    )
    return config


def codec_settings(
    run_config: Mapping[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    """The codec settings a tool decodes with: a training run's `codec` section, else (a bare
    `.keras` file or SavedModel) the schema's defaults, with every override that is not None
    (the tool's flags that were given) in its place.

    Args:
        run_config: a training run's config (`core.run_dir.read_training_config`) or None.
        **overrides: codec fields, e.g. input_size=512, tag_threshold=None (keeps the run's).

    Returns:
        The codec section as a dict; `decoder_options` of it gives the decoder's arguments.

    Raises:
        KeyError: naming an override that is not a codec field.
    """
    codec = base_config().codec.to_dict()
    if run_config is not None and "codec" in run_config:
        section = run_config["codec"]
        codec.update(section.to_dict() if hasattr(section, "to_dict") else section)
    unknown = sorted(set(overrides) - set(codec))
    if unknown:
        raise KeyError(f"not codec fields: {unknown}; the fields are {sorted(codec)}")
    codec.update({key: value for key, value in overrides.items() if value is not None})
    return codec


def apply_paper_recipe(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The paper's Sec. 4.1 network and schedule (used for COCO and MPII alike), in place.

    4-stack hourglass with the official widths and no BatchNorm, 512 input / 128 output,
    global batch 32, Adam 2e-4 dropped to 1e-5 after 100k of 200k iterations, loss weights
    (1, 1e-3, 1e-3) with the exp push; evaluation every 10k steps on 500 validation images.
    """
    config.model.update(
        num_stacks=4, widths=(256, 384, 512, 640, 768), stem_widths=(64, 128),
        feature_width=0, tag_dim=1, batch_norm=False, coordinate_channels=False,
    )
    config.codec.update(
        input_size=512, output_stride=4, sigma=0.0, subpixel_targets=False, max_people=30,
        adjust="official",
    )
    config.loss.update(
        heatmap_weight=1.0, pull_weight=1e-3, push_weight=1e-3, push_type="exp",
        heatmap_foreground_weight=0.0,
    )
    config.optimizer.update(
        learning_rate=2e-4, schedule="step", final_learning_rate=1e-5, decay_step=100_000,
        warmup_steps=0, clipnorm=0.0,
    )
    config.train.update(
        global_batch_size=32, num_steps=200_000, log_every=100, checkpoint_every=2000
    )
    config.eval.update(every_steps=10_000, max_images=500, scales=(1.0,), flip=False)
    return config


def shrink_for_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A 2-stack, 16-channel model at 64 input for 2 steps (seconds on a CPU), in place."""
    config.model.update(
        num_stacks=2, widths=(16, 16, 16, 16, 16), stem_widths=(8, 16), feature_width=16
    )
    config.codec.update(input_size=64)
    config.input.update(shuffle_buffer_size=64)
    config.train.update(global_batch_size=2, num_steps=2, log_every=1, checkpoint_every=1)
    config.eval.update(every_steps=0, max_images=4, num_drawn_images=2)
    return config
