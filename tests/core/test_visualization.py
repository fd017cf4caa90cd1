"""Tests of the drawing functions: skeletons, the tag plot (Figure 4), tag heatmaps (Figure 7)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from associative_embedding.core import visualization
from associative_embedding.core.keypoint_info import COCO, CROWDPOSE, MPII


def grey_image(height: int = 120, width: int = 160) -> np.ndarray:
    return np.full((height, width, 3), 128, np.uint8)


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels that differ."""
    return np.any(before != after, axis=-1)


def test_person_colours_are_distinct_and_deterministic():
    colours = visualization.person_colours(12)
    assert colours == visualization.person_colours(12)
    assert len(set(colours)) == 12
    assert all(all(0 <= channel <= 255 for channel in colour) for colour in colours)


def test_draw_poses_marks_joints_and_limbs_above_the_threshold():
    image = grey_image()
    pose = np.zeros((1, 17, 3), np.float32)
    pose[0, 5] = (40, 30, 0.9)  # left shoulder
    pose[0, 7] = (40, 90, 0.8)  # left elbow: limb (5, 7) joins them
    pose[0, 9] = (120, 60, 0.05)  # left wrist below the threshold: neither it nor (7, 9)
    drawn = visualization.draw_poses(image, pose, COCO, score_threshold=0.1, thickness=2)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert (image == 128).all()  # input untouched
    mask = changed(image, drawn)
    colour = visualization.person_colours(1)[0]
    for x, y in ((40, 30), (40, 90), (40, 60)):  # both joints and the limb's midpoint
        assert mask[y, x]
        np.testing.assert_allclose(drawn[y, x], colour, atol=40)
    assert not mask[55:66, 115:126].any()  # the low-score wrist
    assert not mask[:, 60:].any()  # no limb towards it
    # Nothing else is drawn: the changed pixels hug the vertical limb x = 40.
    columns = np.flatnonzero(mask.any(axis=0))
    assert columns.min() >= 35 and columns.max() <= 45


def test_draw_poses_uses_one_colour_per_person_and_any_skeleton():
    for info in (COCO, CROWDPOSE, MPII):
        image = grey_image(200, 200)
        poses = np.zeros((2, info.num_joints, 3), np.float32)
        first, second = info.skeleton[0]
        for person, x in enumerate((50, 150)):
            poses[person, first] = (x, 40, 1.0)
            poses[person, second] = (x, 160, 1.0)
        drawn = visualization.draw_poses(image, poses, info.skeleton, thickness=3)
        colours = visualization.person_colours(2)
        np.testing.assert_array_equal(drawn[100, 50], colours[0])
        np.testing.assert_array_equal(drawn[100, 150], colours[1])
        custom = visualization.draw_poses(
            image, poses, info, colours=[(255, 0, 0), (0, 0, 255)], thickness=3
        )
        np.testing.assert_array_equal(custom[100, 50], (255, 0, 0))
        np.testing.assert_array_equal(custom[100, 150], (0, 0, 255))


def test_draw_poses_edge_cases():
    image = grey_image()
    np.testing.assert_array_equal(
        visualization.draw_poses(image, np.zeros((0, 17, 3)), COCO), image
    )
    wild = np.full((1, 17, 3), np.nan, np.float32)
    wild[0, 0] = (1e12, -1e12, 1.0)  # far outside: no crash
    visualization.draw_poses(image, wild, COCO)
    with pytest.raises(ValueError, match="outside 0..13"):
        visualization.draw_poses(image, np.ones((1, 14, 3)), COCO)  # COCO limbs, 14 joints
    with pytest.raises(ValueError, match="uint8"):
        visualization.draw_poses(image.astype(np.float32), np.ones((1, 17, 3)), COCO)
    with pytest.raises(ValueError, match="colours"):
        visualization.draw_poses(image, np.ones((2, 17, 3)), COCO, colours=[(0, 0, 0)])


def test_person_joint_tags_reads_the_nearest_map_pixel():
    tags = np.arange(4 * 5 * 2 * 1, dtype=np.float32).reshape(4, 5, 2, 1)
    poses = np.array(
        [[[1.2, 2.9, 0.5], [4.4, 0.0, 0.0]],  # joint 1 missing
         [[9.0, -3.0, 0.9], [0.0, 3.0, 0.05]]],  # clamped; joint 1 under the threshold
        np.float32,
    )
    result = visualization.person_joint_tags(poses, tags, score_threshold=0.1)
    assert result.shape == (2, 2, 1)
    assert result[0, 0, 0] == tags[3, 1, 0, 0]
    assert result[1, 0, 0] == tags[0, 4, 0, 0]
    assert np.isnan(result[0, 1, 0]) and np.isnan(result[1, 1, 0])


def plot_pixels(picture: np.ndarray, colour) -> np.ndarray:
    """(H, W) bool: pixels of exactly this colour."""
    return np.all(picture == np.asarray(colour, np.uint8), axis=-1)


def test_tag_plot_puts_higher_tags_higher_and_skips_missing_joints():
    tags = np.full((2, 17, 1), np.nan, np.float32)
    tags[0, :, 0] = 0.0
    tags[1, :, 0] = 1.0
    tags[1, 9:, 0] = np.nan  # person 1: only the first 9 joints
    picture = visualization.draw_tag_plot(tags, COCO.joint_names, size=(400, 700))
    assert picture.shape == (400, 700, 3) and picture.dtype == np.uint8
    low_colour, high_colour = visualization.person_colours(2)
    low, high = plot_pixels(picture, low_colour), plot_pixels(picture, high_colour)
    assert low.sum() > 100 and high.sum() > 100
    low_rows, high_rows = np.nonzero(low)[0], np.nonzero(high)[0]
    assert np.median(high_rows) < np.median(low_rows)  # tag 1 above tag 0
    # Dots (many pixels per column) only over person 1's first 9 joints: compare the
    # columns of its dots with person 0's, which spans all 17.
    dot_columns_high = np.flatnonzero(high.sum(axis=0) > 3)
    dot_columns_low = np.flatnonzero(low.sum(axis=0) > 3)
    assert dot_columns_high.max() < dot_columns_low.min() + 0.55 * np.ptp(dot_columns_low)
    assert dot_columns_low.max() - dot_columns_low.min() > 400


def test_tag_plot_dimensions_and_empty_plot():
    tags = np.zeros((1, 14, 2), np.float32)
    tags[0, :, 1] = 5.0
    picture = visualization.draw_tag_plot(tags, CROWDPOSE.joint_names, dimension=1)
    assert picture.shape == (480, 720, 3)
    empty = visualization.draw_tag_plot(np.zeros((0, 17, 1)), COCO.joint_names)
    assert empty.shape == (480, 720, 3)
    assert not plot_pixels(empty, visualization.person_colours(1)[0]).any()
    with pytest.raises(ValueError, match="dimension 2"):
        visualization.draw_tag_plot(tags, CROWDPOSE.joint_names, dimension=2)
    with pytest.raises(ValueError, match="K = 17"):
        visualization.draw_tag_plot(tags, COCO.joint_names)
    with pytest.raises(ValueError, match="too small"):
        visualization.draw_tag_plot(tags, CROWDPOSE.joint_names, size=(60, 80))


def test_tag_plot_png_has_the_requested_size(tmp_path):
    tags = np.random.default_rng(0).normal(size=(3, 16, 1)).astype(np.float32)
    picture = visualization.draw_tag_plot(tags, MPII.joint_names, size=(360, 640))
    path = tmp_path / "tags.png"
    assert cv2.imwrite(str(path), picture[..., ::-1])
    assert cv2.imread(str(path)).shape == (360, 640, 3)


def test_tag_heatmaps_colour_the_tag_where_the_heatmap_fires():
    image = grey_image(100, 200)
    heatmaps = np.zeros((25, 50, 2), np.float32)
    tags = np.zeros((25, 50, 2, 1), np.float32)
    heatmaps[:, :20, 0] = 1.0  # joint 0 fires on the left, with the highest tag
    tags[..., 0, 0] = 2.0
    picture = visualization.draw_tag_heatmaps(
        image, heatmaps, tags, ("a", "b"), value_range=(0.0, 2.0), panel_size=200, columns=2
    )
    assert picture.shape == (100 + 40, 400, 3)
    top_colour = visualization._tag_colours(np.array([2.0]), 0.0, 2.0)[0]
    np.testing.assert_array_equal(picture[60, 30], top_colour)  # fired: pure tag colour
    dimmed = picture[60, 150]  # joint 0 silent there: dimmed grey photo
    assert dimmed[0] == dimmed[1] == dimmed[2] < 128
    np.testing.assert_array_equal(picture[60, 230], dimmed)  # joint 1 never fires
    # The colour bar spans the scale: its ends are the colormap's ends.
    bar_row = picture[100 + 12, 60:340]
    np.testing.assert_array_equal(bar_row[-1], top_colour)
    assert not np.array_equal(bar_row[0], top_colour)


def test_tag_heatmaps_default_range_grid_and_errors():
    rng = np.random.default_rng(1)
    heatmaps = rng.uniform(0, 1, (16, 16, 17)).astype(np.float32)
    tags = rng.normal(size=(16, 16, 17, 2)).astype(np.float32)
    picture = visualization.draw_tag_heatmaps(
        grey_image(64, 64), heatmaps, tags, COCO.joint_names, panel_size=64
    )
    assert picture.shape == (4 * 64 + 40, 5 * 64, 3)  # 17 panels: 5 columns, 4 rows
    subset = visualization.draw_tag_heatmaps(
        grey_image(64, 64), heatmaps, tags, COCO.joint_names, joints=[0, 5, 6], panel_size=64,
        dimension=1,
    )
    assert subset.shape == (2 * 64 + 40, 2 * 64, 3)
    with pytest.raises(ValueError, match="joint names"):
        visualization.draw_tag_heatmaps(grey_image(), heatmaps, tags, MPII.joint_names)
    with pytest.raises(ValueError, match="subset"):
        visualization.draw_tag_heatmaps(grey_image(), heatmaps, tags, COCO.joint_names,
                                        joints=[17])
    low, high = visualization.tag_value_range(heatmaps, tags[..., 0], detection_threshold=2.0)
    assert low < high


def test_draw_instances_fills_masks_in_distinct_colours():
    from types import SimpleNamespace

    from associative_embedding.core.visualization import draw_instances

    image = np.full((40, 50, 3), 100, np.uint8)
    first = np.zeros((40, 50), bool)
    first[5:20, 5:20] = True
    second = np.zeros((40, 50), bool)
    second[5:20, 20:35] = True  # touches the first
    instances = [SimpleNamespace(category_index=0, mask=first, score=0.9),
                 SimpleNamespace(category_index=0, mask=second, score=0.8),
                 SimpleNamespace(category_index=1, mask=second, score=0.01)]
    drawn = draw_instances(image, instances, ["disc", "square"], score_threshold=0.1)
    assert drawn.shape == image.shape and np.array_equal(image[0, 0], [100, 100, 100])
    assert not np.array_equal(drawn[12, 12], drawn[12, 27])  # two instances, two colours
    assert np.array_equal(drawn[35, 45], image[35, 45])  # background untouched
    with pytest.raises(ValueError, match="resize first"):
        draw_instances(image, [SimpleNamespace(category_index=0, mask=first[:10], score=1.0)],
                       ["disc"])
