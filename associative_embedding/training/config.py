"""The config sections every task shares: the network, the optimizer, the loop, augmentation.

A task's schema (``tasks/<task>/config.py``) starts from `task_config(task)` and fills in its
own dataset, codec, input, loss and eval sections (`codec`: the settings its target encoder and
its decoder share, said once: input size, output stride, ...); the generic loop
(`training.trainer.Trainer`) and the network factory (`modeling.loading.build_model_from_config`)
read only the shared sections below (and `codec.input_size` / `codec.output_stride`), so every
task trains the same way.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from associative_embedding.data.augment import AugmentConfig


def task_config(task: str) -> ml_collections.ConfigDict:
    """The shared model, optimizer and train sections (the official pose-ae-train recipe,
    paper Sec. 4.1), with empty dataset, input, loss and eval sections for the task to set.

    Args:
        task: `config.task`, the name the task registry picks the trainer by.
    """
    config = ml_collections.ConfigDict()
    config.task = task
    # The task's sections are placeholders here so that every config keeps one section order.
    config.dataset = ml_collections.ConfigDict()

    config.model = ml_collections.ConfigDict(
        dict(
            num_stacks=4,
            widths=(256, 384, 512, 640, 768),
            stem_widths=(64, 128),
            feature_width=0,  # 0 = widths[0] (official)
            tag_dim=1,
            batch_norm=False,
            # Append normalised (x, y) to each stack's head input (CoordConv; not official).
            coordinate_channels=False,
        )
    )
    config.codec = ml_collections.ConfigDict()
    config.input = ml_collections.ConfigDict()
    config.loss = ml_collections.ConfigDict()

    config.optimizer = ml_collections.ConfigDict(
        dict(
            learning_rate=2e-4,
            schedule="step",  # step (official) | cosine | constant
            final_learning_rate=1e-5,
            decay_step=150_000,
            warmup_steps=0,
            clipnorm=0.0,  # 0 = no clipping (official)
        )
    )

    config.train = ml_collections.ConfigDict(
        dict(
            global_batch_size=32,
            num_steps=200_000,
            seed=0,
            deterministic=False,  # op determinism + deterministic tf.data (exact resume)
            mixed_precision="",  # '' | mixed_bfloat16 | mixed_float16
            # XLA-compile each replica's whole step: forward, loss, gradients and the
            # optimizer update (with mixed_bfloat16, the usual accelerator setting).
            jit_compile=False,
            # Training steps run inside one tf.function call (a device-side loop): fewer
            # host round trips per step. Calls end at checkpoint, eval and last steps, so every
            # cadence is kept; every step's losses are still logged.
            steps_per_execution=1,
            # Copy the next batches onto the (single local) device while the current step
            # runs (tf.data prefetch_to_device); ignored with several local replicas.
            prefetch_to_device=False,
            log_every=100,
            checkpoint_every=1000,
            max_to_keep=3,
            time_limit_minutes=0.0,  # 0 = no limit; else stop (and checkpoint) after this
            loss_log=False,  # append every step's losses to WORKDIR/losses.jsonl (chief)
            # Checkpoint prefix whose model weights start a fresh run (fine-tuning, e.g.
            # COCO -> VOC); ignored when the work dir already has a checkpoint to resume.
            init_checkpoint="",
        )
    )
    config.eval = ml_collections.ConfigDict()
    return config


def augmentation_fields() -> dict[str, Any]:
    """The `config.input` augmentation fields shared by every task (official pose-ae-train
    ranges; `augment_config` turns them into an `AugmentConfig`)."""
    return dict(
        max_rotation_degrees=30.0,
        scale_range=(0.75, 1.25),
        max_translation=0.2,
        flip_probability=0.5,
        color_jitter=True,
        shuffle_buffer_size=1024,
        # 'centre' (official) or 'top_left': the image where test-time preprocessing puts it
        # (data.augment.AugmentConfig.placement).
        placement="centre",
    )


def augment_config(config: ml_collections.ConfigDict) -> AugmentConfig:
    """The augmentation settings of `config.input`, at the sizes of `config.codec`."""
    inputs = config.input
    values = dict(
        input_size=config.codec.input_size,
        output_stride=config.codec.output_stride,
        max_rotation_degrees=inputs.max_rotation_degrees,
        scale_range=tuple(inputs.scale_range),
        max_translation=inputs.max_translation,
        flip_probability=inputs.flip_probability,
        placement=inputs.get("placement", "centre"),
    )
    if not inputs.color_jitter:
        values.update(max_hue_delta=0.0, saturation_range=(1.0, 1.0),
                      max_brightness_delta=0.0, contrast_range=(1.0, 1.0))
    return AugmentConfig(**values)
