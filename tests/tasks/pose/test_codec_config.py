"""The `codec` config section: the one place for the settings the target encoder and the decoder
share, read by training, evaluation and the tools, with old work dirs still loading."""

import json

import pytest

from associative_embedding.core import run_dir, startup
from associative_embedding.tasks.pose.config import base_config, codec_settings, decoder_options
from associative_embedding.tasks.segmentation.config import (
    instance_decoder_options,
    segmentation_base_config,
)
from associative_embedding.training.config import augment_config

SHARED = ("input_size", "output_stride", "sigma", "subpixel_targets", "max_people",
          "detection_threshold", "tag_threshold", "refine", "adjust")


def test_each_shared_setting_is_said_once_in_the_codec_section():
    config = base_config()
    for name in SHARED:
        assert name in config.codec
        assert name not in config.input and name not in config.eval
    config.codec.update(input_size=128, output_stride=2, tag_threshold=0.3, adjust="none")
    augment = augment_config(config)
    assert (augment.input_size, augment.output_stride) == (128, 2)
    options = decoder_options(config.codec)
    assert options["tag_threshold"] == 0.3 and options["adjust"] is False
    segmentation = segmentation_base_config()
    assert "input_size" not in segmentation.eval and "max_instances" not in segmentation.input
    segmentation.codec.max_output_instances = 7
    assert instance_decoder_options(segmentation.codec)["max_instances"] == 7


def test_codec_settings_take_the_runs_codec_then_the_given_flags():
    run = base_config()
    run.codec.update(input_size=128, tag_threshold=0.3, detection_threshold=0.4, adjust="taylor")
    codec = codec_settings(run, tag_threshold=None, detection_threshold=0.2, input_size=None)
    assert (codec["input_size"], codec["tag_threshold"], codec["detection_threshold"]) == (
        128, 0.3, 0.2
    )
    assert codec["adjust"] == "taylor"
    assert codec_settings(None)["tag_threshold"] == base_config().codec.tag_threshold
    assert codec_settings(json.loads(run.to_json()))["input_size"] == 128  # a config.json
    with pytest.raises(KeyError, match="not codec fields"):
        codec_settings(run, flip=True)


def _old_layout(config) -> dict:
    """A config as runs wrote it before the codec section: its fields under input and eval."""
    values = json.loads(config.to_json_best_effort())
    codec = values.pop("codec")
    for section, names in (
        ("input", ("input_size", "output_stride", "sigma", "subpixel_targets", "max_people",
                   "max_instances", "pixels_per_instance", "area_average_targets")),
        ("eval", ("input_size", "max_people", "detection_threshold", "tag_threshold", "refine",
                  "adjust", "bandwidth", "method", "min_instance_pixels", "max_tag_distance")),
    ):
        values[section].update({name: codec[name] for name in names if name in codec})
    if "max_output_instances" in codec:
        values["eval"]["max_instances"] = codec["max_output_instances"]
    return values


def test_a_work_dir_written_before_the_codec_section_still_loads(tmp_path):
    config = base_config()
    config.codec.update(input_size=128, tag_threshold=0.3, adjust="taylor")
    (tmp_path / run_dir.CONFIG_NAME).write_text(json.dumps(_old_layout(config)))
    loaded = run_dir.read_training_config(str(tmp_path))
    assert loaded.codec.to_dict() == config.codec.to_dict()
    assert "input_size" not in loaded.input and "adjust" not in loaded.eval
    assert list(loaded.keys()) == list(config.keys())  # codec after model, as new runs
    segmentation = segmentation_base_config()
    segmentation.codec.update(max_instances=8, max_output_instances=12, bandwidth=0.3)
    values = _old_layout(segmentation)
    moves = run_dir.move_to_codec_section(values)
    assert values["codec"] == json.loads(segmentation.to_json_best_effort())["codec"]
    assert "eval.max_instances -> codec.max_output_instances" in moves
    assert values["codec"]["max_instances"] == 8 and values["codec"]["max_output_instances"] == 12
    assert run_dir.move_to_codec_section(values) == []  # already new: left alone


def test_an_override_of_a_moved_field_says_where_it_is_now():
    message = startup._missing_field(base_config(), "input.input_size")
    assert message == (
        "config.input has no field 'input_size' (it is in config.codec: "
        "--config.codec.input_size)"
    )
    assert "did you mean 'scale_range'" in startup._missing_field(base_config(), "input.scale_rang")
