"""The segmentation task's config checks: its dataset, instance codec, loss and eval fields.

Registered for `config.task == 'segmentation'` by ``tasks.registry``; the shared sections are
checked by ``core.config_checks``. No TensorFlow is imported; the enums
are spelled out, and tests check that they agree with the code that consumes each field.
"""

from __future__ import annotations

from associative_embedding.core.config_checks import ConfigChecker, is_int, is_number

#: config.dataset.kind (tasks.segmentation.trainer.prepare_segmentation_data).
DATASET_KINDS = ("synthetic_shapes", "coco", "voc")
#: config.loss.normalization (losses.SEGMENTATION_NORMALIZATIONS).
NORMALIZATIONS = ("mean", "sum")
#: config.codec.method (codec.instance_decode.DECODE_METHODS).
DECODE_METHODS = ("auto", "histogram", "density")


def check_segmentation_config(checker: ConfigChecker) -> None:
    """The segmentation task's own fields."""
    checker.choice("dataset.kind", DATASET_KINDS)
    checker.integer("dataset.num_categories", minimum=1)
    checker.integer_sequence("dataset.category_ids", minimum=0)
    for name in ("voc_root", "voc_train_split", "voc_val_split"):
        checker.string(f"dataset.{name}")
    checker.integer("model.tag_dim", minimum=1)
    # The instance target encoder.
    checker.integer("codec.max_instances", minimum=1)
    checker.integer("codec.pixels_per_instance", minimum=1)
    checker.boolean("codec.area_average_targets")
    # The instance decoder.
    checker.number("codec.detection_threshold", minimum=0.0)
    checker.number("codec.bandwidth", minimum=0.0, exclusive_minimum=True)
    checker.choice("codec.method", DECODE_METHODS)
    tag_dim = checker.get("model.tag_dim")
    if checker.get("codec.method") == "histogram" and is_int(tag_dim) and tag_dim != 1:
        checker.fail("codec.method", f"'histogram' needs model.tag_dim=1, got {tag_dim}; use "
                     "'density' or 'auto'")
    checker.integer("codec.min_instance_pixels", minimum=0)
    checker.integer("codec.max_output_instances", minimum=1)
    checker.number("codec.max_tag_distance", minimum=0.0, note="0 = no limit")
    # Supervised instance sizes.
    checker.number("input.min_instance_size", minimum=0.0)
    checker.number("input.max_instance_size", minimum=0.0)
    low, high = checker.get("input.min_instance_size"), checker.get("input.max_instance_size")
    if is_number(low) and is_number(high) and high <= low:
        checker.fail("input.max_instance_size",
                     f"{high!r} must exceed input.min_instance_size ({low!r})")
    checker.choice("loss.normalization", NORMALIZATIONS)
    for name in ("detection_weight", "detection_foreground_weight"):
        checker.number(f"loss.{name}", minimum=0.0)
    checker.number("eval.scale_nms_iou", minimum=0.0, maximum=1.0)
