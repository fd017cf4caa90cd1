"""PoseTrack 2018 reader on the shared sample (3 annotated frames, an unannotated clip)."""

from __future__ import annotations

import copy
import json
import logging

import numpy as np
import pytest

from associative_embedding.core.keypoint_info import COCO, POSETRACK
from associative_embedding.data import posetrack, readers
from associative_embedding.data.annotation_checks import AnnotationError


@pytest.fixture()
def root(shared_data):
    path = shared_data / "mmpose_samples" / "posetrack18"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture()
def combined(root):
    """The sample's file with all three videos."""
    return json.loads((root / "annotations" / "test_posetrack18_val.json").read_text())


def write(tmp_path, data, name="posetrack.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_reads_videos_tracks_head_boxes_and_ignore_regions(root, combined):
    videos, report = posetrack.read_posetrack(
        root / "annotations" / "test_posetrack18_val.json", root
    )
    assert [video.video_id for video in videos] == ["003418", "009473", "012834"]
    assert [len(video.frames) for video in videos] == [1, 1, 1]
    frames = [video.frames[0] for video in videos]
    assert [frame.track_ids.tolist() for frame in frames] == [[0], [0, 1], list(range(11))]
    assert all(frame.frame_index == 0 and frame.is_labeled for frame in frames)
    # bbox_head (x, y, w, h) = (648, 253, 138, 103) -> (x1, y1, x2, y2).
    np.testing.assert_array_equal(frames[1].record.head_boxes[0], [648, 253, 786, 356])
    assert frames[1].record.keypoints.shape == (2, 17, 3)
    # The keypoints are the file's (one of 012834's joints is outside the image and dropped).
    source = {a["id"]: a for a in combined["annotations"]}
    record = frames[1].record
    for row, annotation_id in enumerate(record.annotation_ids):
        expected = np.reshape(source[int(annotation_id)]["keypoints"], (17, 3))
        np.testing.assert_allclose(record.keypoints[row], expected)
        assert source[int(annotation_id)]["track_id"] == frames[1].track_ids[row]
    # PoseTrack's ignore polygons are in every frame's ignore mask.
    assert all(frame.record.decode_ignore_mask().sum() > 0 for frame in frames)
    assert report.issues["keypoint_outside_image"] == 1
    assert not any(issue in report.issues for issue in posetrack.SKIPPED_ISSUES)


def test_per_video_files_give_the_same_videos(root):
    from_folder = posetrack.read_posetrack_videos(root / "annotations" / "val", root)
    combined, _ = posetrack.read_posetrack(
        root / "annotations" / "test_posetrack18_val.json", root
    )
    assert [v.video_id for v in from_folder] == [v.video_id for v in combined]
    for a, b in zip(from_folder, combined, strict=True):
        np.testing.assert_array_equal(a.frames[0].track_ids, b.frames[0].track_ids)
        np.testing.assert_array_equal(a.frames[0].record.keypoints, b.frames[0].record.keypoints)


def test_a_video_in_two_files_is_an_error(root, tmp_path):
    source = root / "annotations" / "val" / "009473_mpii_test.json"
    with pytest.raises(ValueError, match="009473"):
        posetrack.read_posetrack_videos([source, source], root)


def test_registered_and_detected_before_plain_coco(root, shared_data):
    annotation_file = root / "annotations" / "val" / "009473_mpii_test.json"
    assert readers.detect_annotation_format(annotation_file) == posetrack.FORMAT_POSETRACK
    coco_file = shared_data / "coco_mini_train2017" / "person_keypoints_train2017.json"
    if coco_file.is_file():
        assert readers.detect_annotation_format(coco_file) == readers.FORMAT_COCO
    split = readers.read_split(annotation_file, root)
    assert split.annotation_format == posetrack.FORMAT_POSETRACK
    assert split.keypoint_info.num_joints == 17
    assert [r.num_people for r in split.records] == [2]
    assert split.records[0].head_boxes.shape == (2, 4)
    train = readers.read_train_records(str(annotation_file), str(root), "crowd_and_unlabelled")
    assert [r.num_people for r in train] == [2]


def test_unannotated_frames_are_ordered_and_flagged(root, combined, tmp_path):
    data = copy.deepcopy(combined)
    # The sample's unannotated 5-frame clip, listed out of order, as one more video.
    for index in (3, 0, 4, 1, 2):
        data["images"].append({
            "id": 900 + index, "file_name": f"videos/000001_mpiinew_test/{index:06d}.jpg",
            "vid_id": "000001", "frame_id": 10000010000 + index, "is_labeled": False,
        })
    path = write(tmp_path, data)
    videos, report = posetrack.read_posetrack(path, root)
    clip = next(video for video in videos if video.video_id == "000001")
    assert [frame.frame_index for frame in clip.frames] == [0, 1, 2, 3, 4]
    assert [frame.record.image_id for frame in clip.frames] == [900, 901, 902, 903, 904]
    assert not any(frame.is_labeled for frame in clip.frames)
    assert clip.labeled_frames == []
    assert report.issues["frame_not_labeled"] == 5
    # The flat reader leaves unannotated frames out (they have no ground truth).
    records, _ = posetrack.read_posetrack_records(path, root, split_role="eval")
    assert sorted(r.image_id for r in records) == sorted(i["id"] for i in combined["images"])


def test_bad_entries_are_skipped_and_counted_or_raise_in_strict_mode(root, combined, tmp_path):
    data = copy.deepcopy(combined)
    by_id = {a["id"]: a for a in data["annotations"]}
    del by_id[1012834000003]["track_id"]
    by_id[1012834000005]["track_id"] = 4  # track 4 is already in this frame
    by_id[1012834000006]["bbox_head"] = [1, 2, -3, 4]
    for image in data["images"]:
        if image["id"] == 10094730000:
            del image["vid_id"]
    path = write(tmp_path, data)
    videos, report = posetrack.read_posetrack(path, root)
    frame = next(video for video in videos if video.video_id == "012834").frames[0]
    assert frame.track_ids.tolist() == [0, 1, 2, 4, 6, 7, 8, 9, 10]
    assert 1012834000003 not in frame.record.annotation_ids
    assert 1012834000005 not in frame.record.annotation_ids
    row = frame.track_ids.tolist().index(6)
    assert np.all(np.isnan(frame.record.head_boxes[row]))
    assert report.issues["track_id_missing"] == 1
    assert report.issues["track_id_duplicate"] == 1
    assert report.issues["head_box_missing"] == 1
    # A video without vid_id is named after its folder.
    assert report.issues["video_id_missing"] == 1
    assert "009473_mpii_test" in [video.video_id for video in videos]
    with pytest.raises(AnnotationError) as error:
        posetrack.read_posetrack(path, root, strict=True)
    message = str(error.value)
    assert str(path) in message
    assert "1012834000003" in message and "1012834000005" in message
    assert "track_id_missing" in message and "track_id_duplicate" in message


def test_duplicate_frame_is_skipped(root, combined, tmp_path):
    data = copy.deepcopy(combined)
    twin = copy.deepcopy(next(i for i in data["images"] if i["id"] == 10094730000))
    twin["id"] = 77
    data["images"].append(twin)
    path = write(tmp_path, data)
    videos, report = posetrack.read_posetrack(path, root)
    video = next(video for video in videos if video.video_id == "009473")
    assert [frame.record.image_id for frame in video.frames] == [10094730000]
    assert report.issues["frame_duplicate"] == 1
    with pytest.raises(AnnotationError, match="frame_duplicate"):
        posetrack.read_posetrack(path, root, strict=True)


def test_the_reader_yields_the_posetrack_joint_set(root):
    annotation_file = root / "annotations" / "test_posetrack18_val.json"
    videos, report = posetrack.read_posetrack(annotation_file, root)
    assert all(video.keypoint_info is POSETRACK for video in videos)
    assert posetrack.keypoint_info_of(report) is POSETRACK
    split = readers.read_split(annotation_file, root)
    assert split.keypoint_info is POSETRACK
    # An explicit set still wins (e.g. to score with COCO's sigmas).
    assert readers.read_split(annotation_file, root, dataset="coco").keypoint_info is COCO


def test_a_flip_augmentation_keeps_head_bottom_and_head_top_in_place(root):
    import tensorflow as tf

    from associative_embedding.data.augment import AugmentConfig, Augmenter

    videos, _ = posetrack.read_posetrack(
        root / "annotations" / "val" / "009473_mpii_test.json", root
    )
    keypoints = videos[0].frames[0].record.keypoints  # (2, 17, 3), image pixels
    size = 2048  # wider than the frame: the identity placement keeps every joint
    config = AugmentConfig.identity(input_size=size, ignore_outside_image=False)
    geometry = {"rotation": 0.0, "crop_scale": 1.0, "translate_x": 0.0, "translate_y": 0.0}
    colour = {"hue": 0.0, "saturation": 1.0, "brightness": 0.0, "contrast": 1.0}
    params = {
        "flip": tf.constant(True),
        **{key: tf.constant(value, tf.float64) for key, value in geometry.items()},
        **{key: tf.constant(value, tf.float32) for key, value in colour.items()},
    }
    image = np.zeros((size, size, 3), np.uint8)
    out = Augmenter(config, POSETRACK.flip_index)(image, keypoints, None, None, params)
    flipped = out["keypoints"].numpy()
    for joint in (1, 2):  # head_bottom, head_top: mirrored, same index
        present = keypoints[:, joint, 2] > 0
        assert present.any()
        np.testing.assert_allclose(
            flipped[present, joint, 0], size - 1 - keypoints[present, joint, 0], atol=1e-3
        )
        np.testing.assert_allclose(flipped[present, joint, 1], keypoints[present, joint, 1],
                                   atol=1e-3)
    # The shoulders swap sides.
    present = keypoints[:, 6, 2] > 0
    np.testing.assert_allclose(
        flipped[present, 5, 0], size - 1 - keypoints[present, 6, 0], atol=1e-3
    )


def test_a_folder_is_summed_up_in_one_line_and_only_problem_files_are_logged(
    root, combined, tmp_path, caplog
):
    folder = tmp_path / "annotations"
    folder.mkdir()
    for file in sorted((root / "annotations" / "val").glob("*.json")):
        data = json.loads(file.read_text())
        for annotation in data["annotations"]:
            annotation["area"] = 1000.0  # the sample leaves it out (a repaired issue)
        if file.name.startswith("012834"):
            del data["annotations"][0]["track_id"]
        (folder / file.name).write_text(json.dumps(data))
    # The readers log through absl, whose logger level other tests' flag parsing may have set.
    with caplog.at_level(logging.INFO, logger="absl"):
        videos = posetrack.read_posetrack_videos(folder, root)
    assert len(videos) == 3
    per_file = [r for r in caplog.records if "kept" in r.getMessage()]
    assert [r.levelno for r in per_file] == [logging.WARNING]
    assert "012834_mpii_test.json" in per_file[0].getMessage()
    assert "track_id_missing=1" in per_file[0].getMessage()
    summary = [r.getMessage() for r in caplog.records if "files, " in r.getMessage()]
    assert summary == [
        f"{folder}: 3 files, 3 videos, 3 frames (3 labelled), 13 people; 1 file(s) with "
        "repaired or skipped entries (logged above)."
    ]
