"""The refinement task's config checks: the pose task's keypoint fields, a heatmap-only network
and the `refine` section.

Registered for `config.task == 'refinement'` by ``tasks.registry``; the shared sections are
checked by ``core.config_checks``. No TensorFlow is imported.
"""

from __future__ import annotations

from associative_embedding.core.config_checks import ConfigChecker, is_int
from associative_embedding.tasks.pose.config_checks import check_keypoint_fields


def check_refinement_config(checker: ConfigChecker) -> None:
    """The refinement task's own fields."""
    check_keypoint_fields(checker)
    checker.check("model.tag_dim", lambda value: is_int(value) and value == 0,
                  "must be 0: the refinement network predicts heatmaps only")
    checker.number("refine.min_side", minimum=0.0, exclusive_minimum=True)
    checker.number("refine.margin", minimum=0.0, exclusive_minimum=True)
    checker.integer("refine.crop_size", minimum=0, note="0 = codec.input_size")
    multiple = checker.input_multiple()
    crop_size = checker.get("refine.crop_size")
    if multiple and is_int(crop_size) and crop_size > 0:
        checker.check("refine.crop_size", lambda value: value % multiple == 0,
                      f"must be 0 or a multiple of {multiple} (the network's input multiple)")
    checker.integer("refine.min_joints", minimum=1)
    checker.boolean("refine.ignore_other_people")
    checker.integer("refine.eval_batch_size", minimum=1)
