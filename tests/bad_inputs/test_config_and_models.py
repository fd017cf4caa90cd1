"""Bad configs, damaged models and flag misuse: one short message naming the culprit, up front.

Each case is what a hostile user tries: a config field no consumer accepts (caught when the
config is loaded, before any training), a config file or variant that does not exist, an
unknown or badly typed `--config.a.b` override, a truncated checkpoint, a truncated or corrupt
'.keras' file. The tools are run as subprocesses (their stderr is what the user sees); the
library functions behind them are checked in process.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import re
import subprocess
import sys
import zipfile

import pytest

from associative_embedding.core import config_checks
from associative_embedding.tasks.pose.config import base_config
from tests.conftest import PROJECT_ROOT

TINY_MODEL = {"num_stacks": 2, "widths": (16, 16, 16), "stem_widths": (8, 16)}
POSE_CONFIG = "--config=experiments/synthetic_pose.py"
# absl's log line prefix (severity, date, time, thread, file:line]).
_LOG_LINE = re.compile(r"^[IWEF]\d{4} ")


def run_tool(tool: str, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tools" / f"{tool}.py"), *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def error_message(result: subprocess.CompletedProcess, tool: str) -> str:
    """The tool's one error line, after checking that the report is short and clean."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if not _LOG_LINE.match(line)]
    assert len(lines) <= 2, result.stderr  # the message, then at most the --help pointer
    errors = [line for line in lines if line.startswith(f"{tool}: error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# ---------------------------------------------------------------------- config at load time


@pytest.mark.parametrize(
    ("args", "culprits"),
    [
        (["--config=experiments/missing.py"], ["experiments/missing.py", "not found"]),
        ([f"{POSE_CONFIG}:nosuch"], ["synthetic_pose.py:nosuch", "unknown variant 'nosuch'"]),
        ([POSE_CONFIG, "--config.model.nosuch=1"], ["--config.model.nosuch", "no field"]),
        ([POSE_CONFIG, "--config.model.widht=1"], ["--config.model.widht", "'widths'"]),
        ([POSE_CONFIG, "--config.model.widths=abc"], ["--config.model.widths", "'abc'"]),
        ([POSE_CONFIG, "--config.train.num_steps=abc"], ["--config.train.num_steps=abc"]),
        ([POSE_CONFIG, "--config.codec.adjust=bogus"],
         ["--config.codec.adjust", "'bogus'", "'official'", "'taylor'"]),
        ([POSE_CONFIG, "--config.codec.input_size=100"],
         ["--config.codec.input_size", "100", "multiple of 64"]),
        ([POSE_CONFIG, "--config.loss.push_type=bogus"],
         ["--config.loss.push_type", "'bogus'", "'exp'", "'hinge'"]),
        ([POSE_CONFIG, "--config.dataset.keypoints=nosuch"], ["--config.dataset.keypoints"]),
        ([POSE_CONFIG, "--config.optimizer.schedule=linear"], ["--config.optimizer.schedule"]),
        ([POSE_CONFIG, "--strategy=bogus"], ["--strategy=bogus", "multi_worker"]),
        ([], ["--config is required"]),
    ],
)
def test_train_rejects_a_bad_config_before_any_work(tmp_path, args, culprits):
    workdir = tmp_path / "run"
    message = error_message(run_tool("train", *args, f"--workdir={workdir}"), "train")
    for culprit in culprits:
        assert culprit in message, message
    # Nothing was trained, nor even written: the run stopped before the work dir was made.
    assert not workdir.exists()


def test_print_config_checks_the_config_too():
    result = run_tool("train", POSE_CONFIG, "--config.codec.adjust=bogus", "--print_config")
    assert "--config.codec.adjust" in error_message(result, "train")
    assert result.stdout == ""


def test_a_usage_error_prints_the_message_and_no_flag_help(tmp_path):
    result = run_tool("export", f"--workdir={tmp_path / 'nope'}", f"--export_dir={tmp_path}")
    message = error_message(result, "export")
    assert f"{tmp_path / 'nope'}: no config.json" in message
    assert result.stderr.splitlines()[-1] == "(run with --help to list the flags)"
    assert "--tflite" not in result.stderr and "--overwrite" not in result.stderr


def test_base_configs_and_every_experiment_pass():
    from associative_embedding.tasks.refinement.trainer import refinement_base_config
    from associative_embedding.tasks.segmentation.config import segmentation_base_config

    for config in (base_config(), segmentation_base_config(), refinement_base_config()):
        config_checks.validate_config(config)
        # A work dir's config.json (lists for tuples, inf for an open range) passes as well.
        config_checks.validate_config(json.loads(config.to_json_best_effort()))
    for path in sorted((PROJECT_ROOT / "experiments").glob("*.py")):
        if path.stem == "__init__":
            continue
        module = importlib.import_module(f"experiments.{path.stem}")
        for variant in ("", "smoke"):
            try:
                config = module.get_config(variant)
            except ValueError:
                continue  # an experiment without this variant
            assert config_checks.config_problems(config) == [], (path.stem, variant)


def _pose(**fields):
    config = base_config().to_dict()
    for path, value in fields.items():
        section, name = path.split("__")
        config[section][name] = value
    return config


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"model__widths": (16, 0, 16)}, "model.widths"),
        ({"model__widths": (16,)}, "model.widths"),
        ({"model__stem_widths": (8, 16, 32)}, "model.stem_widths"),
        ({"model__num_stacks": 0}, "model.num_stacks"),
        ({"model__tag_dim": 0}, "model.tag_dim"),
        ({"model__batch_norm": "yes"}, "model.batch_norm"),
        ({"model__widths": (16, 16, 16), "codec__input_size": 40}, "codec.input_size"),
        ({"codec__output_stride": 8}, "codec.output_stride"),
        ({"codec__sigma": -1.0}, "codec.sigma"),
        ({"input__scale_range": (1.25, 0.75)}, "input.scale_range"),
        ({"input__flip_probability": 1.5}, "input.flip_probability"),
        ({"input__placement": "middle"}, "input.placement"),
        ({"dataset__kind": "voc"}, "dataset.kind"),
        ({"dataset__ignore": "nothing"}, "dataset.ignore"),
        ({"loss__pull_weight": -1.0}, "loss.pull_weight"),
        ({"optimizer__learning_rate": 0.0}, "optimizer.learning_rate"),
        ({"train__global_batch_size": 0}, "train.global_batch_size"),
        ({"train__mixed_precision": "float16"}, "train.mixed_precision"),
        ({"train__max_to_keep": 1}, "train.max_to_keep"),
        ({"eval__scales": ()}, "eval.scales"),
        ({"eval__fusion": "mean"}, "eval.fusion"),
        ({"codec__tag_threshold": 0.0}, "codec.tag_threshold"),
        ({"codec__max_people": 0}, "codec.max_people"),
    ],
)
def test_each_bad_field_is_named_with_its_value(fields, key):
    with pytest.raises(config_checks.ConfigError) as caught:
        config_checks.validate_config(_pose(**fields))
    message = str(caught.value)
    assert message.startswith(f"--config.{key}: "), message
    assert len(message.splitlines()) == 1, message
    bad_value = fields[key.replace(".", "__")]
    assert repr(bad_value) in message or repr(list(bad_value)) in message, message


def test_every_bad_field_gets_its_own_line_and_unknown_fields_pass():
    config = _pose(codec__adjust="bogus", loss__push_type="bogus")
    config["model"]["added_later"] = object()  # fields added by later code are not judged
    with pytest.raises(config_checks.ConfigError) as caught:
        config_checks.validate_config(config, source="runs/x/config.json")
    lines = str(caught.value).splitlines()
    assert lines == [
        "runs/x/config.json: --config.loss.push_type: 'bogus' is not allowed; one of 'exp', "
        "'hinge'",
        "runs/x/config.json: --config.codec.adjust: 'bogus' is not allowed; one of 'official', "
        "'symmetric', 'taylor', 'none'",
    ]


def test_segmentation_and_refinement_rules():
    from associative_embedding.tasks.refinement.trainer import refinement_base_config
    from associative_embedding.tasks.segmentation.config import segmentation_base_config

    config = segmentation_base_config()
    config.model.tag_dim = 2
    config.codec.method = "histogram"
    config.loss.normalization = "median"
    problems = config_checks.config_problems(config)
    assert [problem.split(":")[0] for problem in problems] == [
        "--config.codec.method", "--config.loss.normalization"
    ], problems
    config = refinement_base_config()
    config.model.tag_dim = 1
    config.refine.crop_size = 200
    problems = config_checks.config_problems(config)
    assert [problem.split(":")[0] for problem in problems] == [
        "--config.model.tag_dim", "--config.refine.crop_size"
    ], problems


def test_the_checks_agree_with_the_code_that_consumes_each_field():
    from associative_embedding import losses
    from associative_embedding.codec import decode, fusion, instance_decode
    from associative_embedding.core import run_dir
    from associative_embedding.core.keypoint_info import get_keypoint_info
    from associative_embedding.data import augment
    from associative_embedding.modeling import hourglass
    from associative_embedding.tasks import registry
    from associative_embedding.tasks.pose import config_checks as pose_checks
    from associative_embedding.tasks.segmentation import config_checks as segmentation_checks
    from associative_embedding.training import schedules

    assert set(config_checks.registered_tasks()) == set(registry.TASKS)
    assert run_dir.config_task({"task": "segmentation"}) == "segmentation"
    with pytest.raises(ValueError, match="config.task must be one of"):
        run_dir.config_task({"task": "bogus"})
    assert config_checks.PUSH_TYPES == losses.PUSH_TYPES
    assert set(segmentation_checks.NORMALIZATIONS) == set(losses.SEGMENTATION_NORMALIZATIONS)
    assert config_checks.PLACEMENTS == augment.PLACEMENTS
    assert pose_checks.FUSION_MODES == fusion.FUSION_MODES
    assert segmentation_checks.DECODE_METHODS == instance_decode.DECODE_METHODS
    assert set(pose_checks.ADJUST_MODES) - {"none"} <= set(decode.ADJUST_MODES)
    assert config_checks.STEM_STRIDE == hourglass.OUTPUT_STRIDE
    assert set(config_checks.OUTPUT_STRIDES) == set(
        getattr(hourglass, "OUTPUT_STRIDES", config_checks.OUTPUT_STRIDES)
    )
    for name in pose_checks.KEYPOINT_SETS:
        get_keypoint_info(name)
    for kind in config_checks.SCHEDULES:
        schedules.WarmupSchedule(1e-3, kind=kind)
    model = hourglass.StackedHourglass(num_joints=2, **TINY_MODEL)
    assert model.input_multiple == config_checks.input_multiple(TINY_MODEL["widths"])


def test_the_trainer_checks_its_config_before_any_work(tmp_path):
    from associative_embedding.tasks.registry import make_trainer

    config = base_config()
    config.codec.adjust = "bogus"
    with pytest.raises(config_checks.ConfigError, match=r"--config\.codec\.adjust: 'bogus'"):
        make_trainer(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- checkpoints and models


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> dict[str, pathlib.Path]:
    """A tiny work dir and '.keras' file, whole and damaged: truncated checkpoint data, a
    truncated '.keras' file, a '.keras' archive whose weights file is cut short."""
    import keras
    import tensorflow as tf

    from associative_embedding.core.run_dir import CONFIG_NAME
    from associative_embedding.modeling.loading import build_model_from_config

    root = tmp_path_factory.mktemp("damaged")
    config = base_config()
    config.model.update(TINY_MODEL)
    config.codec.input_size = 64
    keras.utils.set_random_seed(0)
    model = build_model_from_config(config)
    workdir = root / "workdir"
    workdir.mkdir()
    (workdir / CONFIG_NAME).write_text(config.to_json_best_effort(indent=2))
    tf.train.Checkpoint(model=model).write(str(workdir / "best" / "model"))
    (data_file,) = (workdir / "best").glob("model.data-*")
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])

    whole = root / "whole.keras"
    model.save(whole)
    truncated = root / "truncated.keras"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    corrupt = root / "corrupt.keras"
    with zipfile.ZipFile(whole) as source, zipfile.ZipFile(corrupt, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            target.writestr(name, content[:1000] if name.endswith(".h5") else content)
    image_dir = root / "images"
    image_dir.mkdir()
    import cv2
    import numpy as np

    cv2.imwrite(str(image_dir / "blank.png"), np.zeros((64, 64, 3), np.uint8))
    return {"workdir": workdir, "checkpoint": workdir / "best" / "model", "whole": whole,
            "truncated": truncated, "corrupt": corrupt, "images": image_dir, "root": root}


def test_truncated_checkpoint_named_by_export_and_predict(damaged):
    checkpoint = damaged["checkpoint"]
    result = run_tool("export", f"--workdir={damaged['workdir']}",
                      f"--export_dir={damaged['root'] / 'export'}")
    message = error_message(result, "export")
    assert f"checkpoint {checkpoint} exists but is unreadable (truncated or corrupt" in message
    assert "Read less bytes than requested" in message
    result = run_tool("predict", f"--checkpoint={checkpoint}", f"--input={damaged['images']}",
                      f"--output_dir={damaged['root'] / 'predictions'}", "--noprogress")
    assert f"checkpoint {checkpoint} exists but is unreadable" in error_message(result, "predict")


def test_damaged_keras_files_named_by_export_and_predict(damaged):
    truncated, corrupt = damaged["truncated"], damaged["corrupt"]
    result = run_tool("export", f"--checkpoint={truncated}",
                      f"--export_dir={damaged['root'] / 'export'}")
    message = error_message(result, "export")
    assert f"{truncated} exists but is unreadable (truncated or corrupt" in message
    assert "not found" not in message.lower()
    result = run_tool("predict", f"--checkpoint={corrupt}", f"--input={damaged['images']}",
                      f"--output_dir={damaged['root'] / 'predictions'}", "--noprogress")
    message = error_message(result, "predict")
    assert f"model file {corrupt} exists but is unreadable (truncated or corrupt" in message


def test_library_loaders_tell_missing_from_unreadable(damaged, tmp_path):
    from associative_embedding.core import run_dir
    from associative_embedding.modeling import loading

    with pytest.raises(run_dir.ModelFileError, match="Read less bytes than requested") as caught:
        loading.load_model_from_checkpoint(str(damaged["checkpoint"]))
    assert str(damaged["checkpoint"]) in str(caught.value)
    with pytest.raises(run_dir.ModelFileError, match="not a zip archive") as caught:
        loading.load_keras_model(damaged["truncated"])
    assert str(damaged["truncated"]) in str(caught.value)
    for path in (damaged["truncated"], damaged["corrupt"], damaged["workdir"]):
        with pytest.raises(run_dir.ModelFileError, match="exists but is unreadable") as caught:
            loading.load_inference_model(path)
        assert str(path) in str(caught.value)
    missing = tmp_path / "missing.keras"
    with pytest.raises(FileNotFoundError, match=f"not found: {missing}"):
        loading.load_keras_model(missing)
    with pytest.raises(FileNotFoundError, match=str(missing)):
        loading.load_inference_model(missing)
    assert loading.load_keras_model(damaged["whole"]).num_stacks == 2
    # The predictor loader used by library callers (paper tables, refiners) names them too.
    for path in (damaged["truncated"], damaged["corrupt"]):
        with pytest.raises(run_dir.ModelFileError, match="exists but is unreadable") as caught:
            loading.load_predictor(path)
        assert str(path) in str(caught.value)
    assert loading.load_predictor(damaged["whole"]).output_stride == 4


def test_a_work_dir_config_json_is_read_and_checked(damaged, tmp_path):
    from associative_embedding.core import run_dir

    config_path = tmp_path / "config.json"
    config_path.write_text(damaged["workdir"].joinpath("config.json").read_text()[:300])
    with pytest.raises(run_dir.ModelFileError, match="exists but is unreadable") as caught:
        run_dir.read_training_config(str(tmp_path))
    assert str(config_path) in str(caught.value)
    config = json.loads(damaged["workdir"].joinpath("config.json").read_text())
    config["codec"]["adjust"] = "bogus"
    config_path.write_text(json.dumps(config))
    with pytest.raises(config_checks.ConfigError) as caught:
        run_dir.read_training_config(str(tmp_path))
    assert str(caught.value) == (
        f"{config_path}: --config.codec.adjust: 'bogus' is not allowed; one of 'official', "
        "'symmetric', 'taylor', 'none'"
    )
