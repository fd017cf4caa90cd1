"""Tests of the paper's tables: numbers, layout, reading metrics files, row evaluation."""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pytest

from associative_embedding import reproduce as paper_tables
from associative_embedding.modeling import loading as predictor_lib
from associative_embedding.reproduce import (
    TABLES,
    TableReport,
    format_markdown,
    get_table,
    parse_metrics_argument,
    read_metrics_file,
    report_json,
    row_result,
    write_report,
)

PAPER_TEXT = (
    pathlib.Path(__file__).resolve().parents[3] / "shared" / "paper"
    / "associative_embedding_paper.txt"
)

# The paper's "Our method" rows, checked by hand against its tables.
ISSUE_NUMBERS = {
    (1, "ours"): (92.1, 89.3, 78.9, 69.8, 76.2, 71.6, 64.7, 77.5),
    (2, "ours"): (0.663, 0.865, 0.727, 0.613, 0.732, 0.715, 0.897, 0.772, 0.662, 0.787),
    (3, "ours"): (0.655, 0.868, 0.723, 0.606, 0.726, 0.702, 0.895, 0.760, 0.646, 0.781),
    (4, "single"): (0.566, 0.818, 0.618, 0.498, 0.670),
    (4, "single_refine"): (0.628, 0.846, 0.692, 0.575, 0.706),
    (4, "multi"): (0.630, 0.857, 0.689, 0.580, 0.704),
    (4, "multi_refine"): (0.655, 0.868, 0.723, 0.606, 0.726),
    (5, "ours"): (35.1, 26.0),
}

# Per table: the first row label, the caption's start, as they appear in the paper's text.
PAPER_TEXT_BLOCKS = {
    1: ("Iqbal&Gall, ECCV16 [29]", "Table 1. Results (AP) on MPII"),
    2: ("CMU-Pose [6]", "Table 2. Results on MS-COCO test-std"),
    3: ("CMU-Pose [6]", "Table 3. Results on MS-COCO test-dev"),
    4: ("single scale", "Table 4. Effect of multi-scale"),
    5: ("SDS [22]", "Table 5. Semantic instance segmentation"),
}


def paper_text_columns(text: str, table_number: int, headers) -> dict[str, list[float | None]]:
    """Reads each column of a table from the paper's text (a header line, then one value per
    line; '–' is None)."""
    first_label, caption = PAPER_TEXT_BLOCKS[table_number]
    end = text.index(caption)
    start = text.rindex(first_label, 0, end)
    lines = [line.strip() for line in text[start:end].splitlines()]
    columns = {}
    for header in headers:
        index = lines.index(header) + 1
        values: list[float | None] = []
        while index < len(lines):
            cell = lines[index]
            if cell in ("–", "-", "—"):
                values.append(None)
            else:
                try:
                    values.append(float(cell))
                except ValueError:
                    break
            index += 1
        columns[header] = values
    return columns


# ------------------------------------------------------------------ the paper's numbers


@pytest.mark.parametrize(("table_number", "row_key"), sorted(ISSUE_NUMBERS))
def test_our_rows_hold_the_papers_numbers(table_number, row_key):
    row = get_table(table_number).row(row_key)
    assert row.paper == ISSUE_NUMBERS[(table_number, row_key)]


@pytest.mark.parametrize("table_number", sorted(TABLES))
def test_numbers_match_the_papers_text(table_number):
    if not PAPER_TEXT.is_file():
        pytest.skip(f"the paper's text {PAPER_TEXT} is absent")
    table = get_table(table_number)
    columns = paper_text_columns(PAPER_TEXT.read_text(), table_number, table.column_names)
    expected_rows = [*(other.values for other in table.others), *(row.paper for row in table.rows)]
    for index, name in enumerate(table.column_names):
        assert columns[name] == [values[index] for values in expected_rows], name


def test_table4_rows_and_settings():
    table = get_table(4)
    assert [(row.label, row.multi_scale, row.refine) for row in table.rows] == [
        ("single scale", False, False),
        ("single scale + refine", False, True),
        ("multi scale", True, False),
        ("multi scale + refine", True, True),
    ]
    assert table.column_names == ("AP", "AP50", "AP75", "APM", "APL")
    assert paper_tables.PAPER_MULTI_SCALES == (2.0, 1.0, 0.5)
    # Table 3's "Our method" is the full pipeline of Table 4.
    assert get_table(3).rows[0].paper[:5] == table.row("multi_refine").paper


def test_unknown_table_and_row():
    with pytest.raises(ValueError, match="Tables 1-5"):
        get_table(6)
    with pytest.raises(KeyError, match="single_refine"):
        get_table(4).row("ours")


# ------------------------------------------------------------------ layout


@pytest.mark.parametrize("table_number", sorted(TABLES))
def test_every_table_prints_its_header_and_the_paper_rows(table_number):
    table = get_table(table_number)
    text = format_markdown(TableReport(table))
    lines = text.splitlines()
    assert lines[0] == f"## {table.caption}"
    header = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert header == ["Method", "", *table.column_names]
    for row in table.rows:
        paper_line = next(line for line in lines if line.startswith(f"| {row.label} "))
        cells = [cell.strip() for cell in paper_line.strip("|").split("|")]
        assert cells[1] == "paper"
        assert cells[2:] == [f"{value:.{table.decimals}f}" for value in row.paper]
        ours_line = lines[lines.index(paper_line) + 1]
        assert [cell.strip() for cell in ours_line.strip("|").split("|")][1:] == [
            "ours", *(["not run"] * len(table.columns))
        ]
    for other in table.others:
        assert any(line.startswith(f"| {other.label} ") for line in lines)
    # The paper's '–' (no number reported) stays '–'.
    if table_number == 3:
        mask_rcnn = next(line for line in lines if line.startswith("| Mask-RCNN"))
        assert mask_rcnn.count("–") == 5


def test_ours_beside_the_paper_with_units_and_split_note():
    table = get_table(1)
    metrics = {f"AP_{name}": 0.5 for name in
               ("head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")}
    metrics["AP"] = 0.4321
    result = row_result(table, table.rows[0], metrics, "evaluated (x)")
    report = TableReport(table, {"ours": result})
    report.notes.append(paper_tables.evaluated_split_note(table, "evaluated on valid.json"))
    text = format_markdown(report)
    ours_line = next(line for line in text.splitlines() if "| ours" in line)
    assert [cell.strip() for cell in ours_line.strip("|").split("|")][2:] == (
        ["50.0"] * 7 + ["43.2"]
    )
    assert "percent" in text
    assert "NOT the paper's MPII Multi-Person test" in text


def test_report_json_and_files(tmp_path):
    table = get_table(4)
    metrics = {"AP": 0.5, "AP50": 0.75, "AP75": 0.25, "APM": 0.125, "APL": -1.0}
    result = row_result(table, table.row("multi"), metrics, "read from m.json")
    report = TableReport(table, {"multi": result}, ["a note"])
    markdown_path, json_path = write_report(report, tmp_path / "out")
    assert pathlib.Path(markdown_path).read_text() == format_markdown(report)
    payload = json.loads(pathlib.Path(json_path).read_text())
    assert payload == report_json(report)
    assert payload["table"] == 4 and payload["units"] == "fraction"
    assert payload["paper_split_annotations_public"] is False
    by_key = {row["key"]: row for row in payload["rows"]}
    assert by_key["multi"]["paper"]["AP"] == 0.630
    assert by_key["multi"]["ours"] == {"AP": 0.5, "AP50": 0.75, "AP75": 0.25, "APM": 0.125,
                                       "APL": None}
    assert by_key["multi"]["undefined"] == ["APL"]
    assert by_key["single"]["ours"] is None
    assert payload["notes"] == ["a note"]


# ------------------------------------------------------------------ reading metrics


def write(path: pathlib.Path, payload) -> pathlib.Path:
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_evaluate_tool_metrics_json_skips_non_numeric_entries(tmp_path):
    # What tools/evaluate.py writes (plus a training run's 'history').
    path = write(tmp_path / "metrics.json", {
        "AP": 0.61, "AP50": 0.84, "AP75": 0.66, "APM": 0.55, "APL": 0.7, "AR": 0.66,
        "AR50": 0.87, "AR75": 0.7, "ARM": 0.6, "ARL": 0.75, "num_images": 500,
        "num_detections": 1234, "num_images_skipped": 0, "refine_checkpoint": "runs/refine",
        "history": [{"AP": 0.1}], "flip": True,
    })
    metrics = read_metrics_file(path)
    assert "refine_checkpoint" not in metrics and "history" not in metrics
    assert "flip" not in metrics  # a bool is not a metric
    table = get_table(2)
    result = row_result(table, table.rows[0], metrics, f"read from {path}")
    assert result.values == (0.61, 0.84, 0.66, 0.55, 0.7, 0.66, 0.87, 0.7, 0.6, 0.75)
    assert result.missing == () and result.undefined == ()


def test_missing_keys_are_reported(tmp_path):
    path = write(tmp_path / "metrics.json", {"AP": 0.5, "AP50": 0.7, "AP75": 0.4,
                                             "refine_checkpoint": None})
    table = get_table(4)
    result = paper_tables.read_metrics_rows(table, {"single": str(path)})["single"]
    assert result.values == (0.5, 0.7, 0.4, None, None)
    assert result.missing == ("APM", "APL")
    text = format_markdown(TableReport(table, {"single": result}))
    assert "MISSING in the metrics: APM, APL" in text
    assert str(path) in text


def test_a_file_without_any_of_the_tables_metrics_is_an_error(tmp_path):
    path = write(tmp_path / "coco.json", {"AP": 0.5, "AP50": 0.7})
    table = get_table(5)
    with pytest.raises(ValueError, match=r"coco\.json.*mAPr@0\.5, mAPr@0\.7.*AP, AP50"):
        row_result(table, table.rows[0], read_metrics_file(path), str(path))


def test_undefined_values_null_nan_and_minus_one(tmp_path):
    path = write(tmp_path / "mpii.json", {
        "AP": 0.5, "AP_head": None, "AP_shoulder": -1, "AP_elbow": 0.25, "AP_wrist": 0.25,
        "AP_hip": 0.25, "AP_knee": 0.25, "AP_ankle": 0.25,
    })
    table = get_table(1)
    result = row_result(table, table.rows[0], read_metrics_file(path), "x")
    assert result.values == (None, None, 25.0, 25.0, 25.0, 25.0, 25.0, 50.0)
    assert result.undefined == ("Head", "Shoulder")
    assert result.missing == ()


def test_percentages_where_fractions_are_expected_are_an_error():
    table = get_table(5)
    with pytest.raises(ValueError, match=r"IOU=0\.5 = 35\.1.*fractions"):
        row_result(table, table.rows[0], {"mAPr@0.5": 35.1, "mAPr@0.7": 26.0}, "voc.json")


def test_segmentation_metrics_in_percent_of_the_table():
    table = get_table(5)
    result = row_result(table, table.rows[0],
                        {"mAPr@0.5": 0.351, "mAPr@0.7": 0.26, "segm_AP": 0.2}, "x")
    assert np.allclose(result.values, (35.1, 26.0))


def test_evaluation_server_formats(tmp_path):
    table = get_table(3)
    expected = (0.655, 0.868, 0.723, 0.606, 0.726, 0.702, 0.895, 0.760, 0.646, 0.781)
    stats = write(tmp_path / "stats.json", {"stats": list(expected)})
    named = write(tmp_path / "named.json", dict(zip(
        ("AP", "AP_50", "AP_75", "AP_medium", "AP_large", "AR", "AR_50", "AR_75", "AR_medium",
         "AR_large"), expected, strict=True)))
    scores = write(tmp_path / "scores.txt", "".join(
        f"{name}: {value}\n" for name, value in zip(
            ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"),
            expected, strict=True)
    ) + "some other line\n")
    summary_lines = [
        ("Precision", "AP", "0.50:0.95", "   all"), ("Precision", "AP", "0.50     ", "   all"),
        ("Precision", "AP", "0.75     ", "   all"), ("Precision", "AP", "0.50:0.95", "medium"),
        ("Precision", "AP", "0.50:0.95", " large"), ("Recall   ", "AR", "0.50:0.95", "   all"),
        ("Recall   ", "AR", "0.50     ", "   all"), ("Recall   ", "AR", "0.75     ", "   all"),
        ("Recall   ", "AR", "0.50:0.95", "medium"), ("Recall   ", "AR", "0.50:0.95", " large"),
    ]
    summary = write(tmp_path / "summary.txt", "Accumulating evaluation results...\n" + "".join(
        f" Average {kind} ({short}) @[ IoU={iou} | area={area} | maxDets= 20 ] = {value:.3f}\n"
        for (kind, short, iou, area), value in zip(summary_lines, expected, strict=True)
    ))
    for path in (stats, named, scores, summary):
        result = row_result(table, table.rows[0], read_metrics_file(path), str(path))
        assert result.values == expected, path
        assert result.missing == ()


def test_unreadable_metrics_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        read_metrics_file(tmp_path / "nothing.json")
    results = write(tmp_path / "keypoint_results.json", [{"image_id": 1, "score": 0.5}])
    with pytest.raises(ValueError, match="results file of detections"):
        read_metrics_file(results)
    junk = write(tmp_path / "junk.txt", "no metrics here\n")
    with pytest.raises(ValueError, match="junk.txt"):
        read_metrics_file(junk)


def test_parse_metrics_argument(tmp_path):
    bare = write(tmp_path / "m.json", {"AP": 0.5})
    assert parse_metrics_argument(get_table(2), [str(bare)]) == {"ours": str(bare)}
    assert parse_metrics_argument(get_table(2), [f"ours={bare}"]) == {"ours": str(bare)}
    table4 = get_table(4)
    assert parse_metrics_argument(table4, ["single=a.json", "multi_refine=b.json"]) == {
        "single": "a.json", "multi_refine": "b.json"
    }
    with pytest.raises(ValueError, match="ROW=path"):
        parse_metrics_argument(table4, [str(bare)])
    with pytest.raises(ValueError, match="no row 'multiscale'"):
        parse_metrics_argument(table4, ["multiscale=a.json"])
    with pytest.raises(ValueError, match="given twice"):
        parse_metrics_argument(table4, ["single=a.json", "single=b.json"])


def test_normalize_key():
    assert paper_tables.normalize_key("AP_medium") == paper_tables.normalize_key("APMedium")
    assert paper_tables.normalize_key("mAPr@0.5") == "mapr05"


# ------------------------------------------------------------------ row evaluation


class _FakeNetwork:
    """Stands in for the multi-person network: one person with every joint at a fixed output
    pixel (peak 1, tags 0), whatever the image."""

    input_multiple = 64
    source = "fake network"

    def __init__(self, num_joints: int = 17) -> None:
        self.num_joints = num_joints
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        images = np.asarray(images)
        batch, height, width = images.shape[:3]
        outputs = np.zeros((batch, height // 4, width // 4, 2 * self.num_joints), np.float32)
        for joint in range(self.num_joints):
            outputs[:, 4 + joint // 4 * 2, 4 + joint % 4 * 2, joint] = 1.0
        return outputs


class _FakeRefiner:
    """Moves every joint 5 pixels right; counts its calls."""

    def __init__(self) -> None:
        from associative_embedding.tasks.refinement.refine import RefinementStats

        self.stats = RefinementStats()
        self.calls = 0

    def __call__(self, image, poses, scores):
        self.calls += 1
        self.stats.images += 1
        poses = poses.copy()
        poses[:, :, 0] += 5.0
        return poses, scores


@pytest.fixture(scope="module")
def synthetic_split(tmp_path_factory):
    from associative_embedding.data import synthetic

    root = tmp_path_factory.mktemp("synthetic")
    synthetic.generate_synthetic_dataset(root, split="val", num_images=2, seed=3, image_size=128)
    return str(synthetic.annotation_path(root, "val")), str(root / "val")


def test_table4_rows_share_one_network_pass_per_scale_setting(
    synthetic_split, tmp_path, monkeypatch
):
    from associative_embedding.tasks.refinement import refine as refine_module

    network, refiner = _FakeNetwork(), _FakeRefiner()
    monkeypatch.setattr(predictor_lib, "load_predictor", lambda path: network)
    monkeypatch.setattr(refine_module, "load_refiner", lambda path, info, **options: refiner)
    model_file = tmp_path / "model.keras"
    model_file.write_bytes(b"")  # exists; the fake loader reads nothing
    options = paper_tables.PoseEvaluationOptions(
        checkpoint=str(model_file), refine_checkpoint=str(model_file), input_size=128,
        multi_scales=(1.0, 0.5), flip=False, progress=False,
    )
    annotations, images = synthetic_split
    report = paper_tables.evaluate_pose_rows(
        get_table(4), annotations, images, options, tmp_path / "out", synthetic_data=True
    )
    assert sorted(report.results) == ["multi", "multi_refine", "single", "single_refine"]
    # One network pass per image per scale (1 + 2 scales), one refinement per image and
    # scale setting: the refined rows refine the unrefined rows' poses.
    assert network.calls == 2 * (1 + 2)
    assert refiner.calls == 2 * 2

    def result_poses(row_key):
        path = tmp_path / "out" / "table4" / row_key / "keypoint_results.json"
        results = json.loads(path.read_text())
        return np.array([entry["keypoints"] for entry in results]).reshape(len(results), -1, 3)

    for plain, refined in (("single", "single_refine"), ("multi", "multi_refine")):
        plain_poses, refined_poses = result_poses(plain), result_poses(refined)
        assert plain_poses.shape == refined_poses.shape and len(plain_poses) >= 2
        present = (plain_poses[..., 2] > 0) & (refined_poses[..., 2] > 0)
        assert present.mean() > 0.5
        shift = refined_poses[..., 0] - plain_poses[..., 0]
        assert np.allclose(shift[present], 5.0, atol=1e-3)
        assert np.allclose(refined_poses[..., 1][present], plain_poses[..., 1][present])
    metrics = json.loads((tmp_path / "out" / "table4" / "single_refine" / "metrics.json")
                         .read_text())
    assert metrics["refine_checkpoint"] == str(model_file)
    assert metrics["scales"] == [1.0] and metrics["flip"] is False and metrics["input_size"] == 128
    assert json.loads((tmp_path / "out" / "table4" / "multi" / "metrics.json").read_text())[
        "scales"] == [1.0, 0.5]
    text = format_markdown(report)
    assert "Synthetic data" in text and "NOT the paper's MS-COCO test-dev" in text
    assert "not run" not in text
    for result in report.results.values():
        assert all(value is None or 0.0 <= value <= 1.0 for value in result.values)
        assert not math.isnan(result.values[0])


def test_without_refinement_network_refined_rows_are_not_run(
    synthetic_split, tmp_path, monkeypatch
):
    network = _FakeNetwork()
    monkeypatch.setattr(predictor_lib, "load_predictor", lambda path: network)
    model_file = tmp_path / "model.keras"
    model_file.write_bytes(b"")
    annotations, images = synthetic_split
    options = paper_tables.PoseEvaluationOptions(
        checkpoint=str(model_file), input_size=128, multi_scales=(1.0,), progress=False
    )
    report = paper_tables.evaluate_pose_rows(
        get_table(4), annotations, images, options, tmp_path / "out"
    )
    assert sorted(report.results) == ["multi", "single"]
    assert any("single scale + refine, multi scale + refine" in note for note in report.notes)
    # A one-row table runs the full pipeline without refinement, and says so.
    report = paper_tables.evaluate_pose_rows(
        get_table(3), annotations, images, options, tmp_path / "out3"
    )
    assert list(report.results) == ["ours"]
    assert any("WITHOUT the single-person refinement" in note for note in report.notes)


def test_a_coco_split_is_rejected_for_the_mpii_table(synthetic_split, tmp_path):
    annotations, images = synthetic_split
    options = paper_tables.PoseEvaluationOptions(checkpoint=str(tmp_path))
    with pytest.raises(ValueError, match="Table 1 is MPII"):
        paper_tables.evaluate_pose_rows(get_table(1), annotations, images, options, tmp_path)


def test_flip_default_follows_the_training_augmentation():
    from associative_embedding.tasks.pose.config import base_config

    config = base_config()
    options = paper_tables.PoseEvaluationOptions(checkpoint="x")
    assert paper_tables.pose_test_settings(config, options).flip is True
    config.input.flip_probability = 0.0
    settings = paper_tables.pose_test_settings(config, options)
    assert settings.flip is False
    assert settings.input_size == config.codec.input_size
    assert settings.decoder["detection_threshold"] == config.codec.detection_threshold
    options.flip, options.fusion, options.input_size = True, "paper", 256
    settings = paper_tables.pose_test_settings(config, options)
    assert (settings.flip, settings.fusion, settings.input_size) == (True, "paper", 256)
    config.task = "segmentation"
    with pytest.raises(ValueError, match="Table 5 takes segmentation runs"):
        paper_tables.pose_test_settings(config, options)


def test_resolve_checkpoint_and_synthetic_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        paper_tables.resolve_checkpoint(tmp_path / "missing")
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps(
        {"task": "pose", "dataset": {"kind": "synthetic", "synthetic_dir": ""}}
    ))
    with pytest.raises(FileNotFoundError, match="without any checkpoint"):
        paper_tables.resolve_checkpoint(workdir)
    (workdir / "best").mkdir()
    (workdir / "best" / "model.index").write_bytes(b"")
    assert paper_tables.resolve_checkpoint(workdir) == str(workdir / "best" / "model")
    with pytest.raises(FileNotFoundError, match=r"synthetic/annotations/person_keypoints_val"):
        paper_tables.synthetic_val_split(workdir)
    (workdir / "config.json").write_text(json.dumps(
        {"task": "pose", "dataset": {"kind": "coco"}}
    ))
    with pytest.raises(ValueError, match="not on synthetic data"):
        paper_tables.synthetic_val_split(workdir)
