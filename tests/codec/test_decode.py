"""Tests of the grouping decoder (codec/decode.py) on synthetic heatmaps and tags.

Ground-truth joints are given in heatmap pixel-centre coordinates; ``group_poses`` returns
corner coordinates (centre + 0.5), so comparisons subtract 0.5.
"""

from __future__ import annotations

import numpy as np
import pytest

from associative_embedding.codec import default_grouping_order, group_poses
from associative_embedding.codec.decode import _taylor_offsets
from associative_embedding.core import keypoint_info

COCO_K = 17


def render_maps(
    joints: np.ndarray,
    person_tags: np.ndarray,
    height: int,
    width: int,
    *,
    sigma: float = 2.0,
    tag_radius: float = 3.0,
    background_tag: float = -100.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Perfect network outputs for people with constant tags.

    Args:
        joints: (N, K, 3) (x, y, amplitude) in heatmap pixel-centre coordinates; amplitude 0
            means the joint is absent (no peak, no tag).
        person_tags: (N, D) tag of each person.
        height, width: map size.
        sigma: Gaussian sigma of the peaks (heatmaps combine people by per-pixel max).
        tag_radius: each joint writes its person's tag on a disk of this radius in its joint's
            tag channel; where disks of one channel overlap, the nearest joint wins.
        background_tag: tag everywhere else.

    Returns:
        heatmaps (h, w, K) float32 and tags (h, w, K, D) float32.
    """
    joints = np.asarray(joints, np.float64)
    person_tags = np.asarray(person_tags, np.float64).reshape(len(joints), -1)
    num_people, num_joints, _ = joints.shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    heatmaps = np.zeros((height, width, num_joints), np.float32)
    tags = np.full((height, width, num_joints, person_tags.shape[1]), background_tag, np.float32)
    for joint in range(num_joints):
        nearest = np.full((height, width), np.inf)
        for person in range(num_people):
            x, y, amplitude = joints[person, joint]
            if amplitude <= 0:
                continue
            squared = (cols - x) ** 2 + (rows - y) ** 2
            peak = amplitude * np.exp(-squared / (2.0 * sigma**2))
            heatmaps[:, :, joint] = np.maximum(heatmaps[:, :, joint], peak)
            closer = (squared < nearest) & (squared <= tag_radius**2)
            tags[closer, joint] = person_tags[person]
            nearest = np.where(closer, squared, nearest)
    return heatmaps, tags


def random_people(
    rng: np.random.Generator,
    num_people: int,
    height: int,
    width: int,
    *,
    num_joints: int = COCO_K,
    min_separation: float = 4.0,
    margin: float = 2.0,
    integer: bool = False,
) -> np.ndarray:
    """(N, K, 3) joints with amplitude 1; same-type joints of different people are at least
    ``min_separation`` apart so each keeps its own local maximum. ``integer`` puts joints on
    pixel centres, where the peak value is exactly the amplitude."""
    joints = np.zeros((num_people, num_joints, 3))
    joints[:, :, 2] = 1.0
    for joint in range(num_joints):
        placed: list[np.ndarray] = []
        for person in range(num_people):
            while True:
                point = rng.uniform([margin, margin], [width - 1 - margin, height - 1 - margin])
                if integer:
                    point = np.round(point)
                if all(np.hypot(*(point - other)) >= min_separation for other in placed):
                    break
            placed.append(point)
            joints[person, joint, :2] = point
    return joints


def match_people(poses: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """For each ground-truth person, the index of the decoded person with the closest joints
    (compared on the ground truth's present joints, corner -> centre coordinates)."""
    present = joints[:, :, 2] > 0
    centres = poses[:, :, :2] - 0.5
    errors = np.linalg.norm(centres[None, :, :, :] - joints[:, None, :, :2], axis=-1)
    errors = np.where(present[:, None, :], errors, 0.0).sum(axis=2)
    return np.argmin(errors, axis=1)


def assert_decodes_exactly(poses: np.ndarray, joints: np.ndarray, tolerance: float = 0.5):
    assert poses.shape[0] == joints.shape[0], f"{poses.shape[0]} people for {joints.shape[0]}"
    matched = match_people(poses, joints)
    assert sorted(matched.tolist()) == list(range(len(joints))), matched
    present = joints[:, :, 2] > 0
    decoded = poses[matched]
    np.testing.assert_array_equal(decoded[:, :, 2] > 0, present)
    error = np.abs(decoded[:, :, :2] - 0.5 - joints[:, :, :2])
    assert error[present].max() <= tolerance, error[present].max()


# ----------------------------------------------------------------------------- exact decoding


@pytest.mark.parametrize("num_people", list(range(1, 11)))
def test_perfect_maps_decode_to_the_people(num_people):
    rng = np.random.default_rng(100 + num_people)
    height, width = 64, 80
    joints = random_people(rng, num_people, height, width)
    person_tags = 2.0 * rng.permutation(num_people)[:, None] - 5.0
    heatmaps, tags = render_maps(joints, person_tags, height, width)
    poses, scores = group_poses(heatmaps, tags)
    assert poses.dtype == np.float32 and scores.dtype == np.float32
    assert poses.shape == (num_people, COCO_K, 3)
    assert_decodes_exactly(poses, joints)
    # Joint score = heatmap value at the integer peak; person score = their mean.
    peaks = np.floor(poses[:, :, :2]).astype(int)
    values = heatmaps[peaks[:, :, 1], peaks[:, :, 0], np.arange(COCO_K)]
    np.testing.assert_allclose(poses[:, :, 2], values)
    np.testing.assert_allclose(scores, values.mean(axis=1), rtol=1e-6)
    assert np.all(np.diff(scores) <= 0)


def test_overlapping_people_with_touching_joints():
    """Every joint of person B sits 3 px from the same joint of person A (their tag disks
    overlap) and a third person crosses both; tags differ by exactly 2."""
    rng = np.random.default_rng(7)
    height, width = 48, 48
    base = rng.uniform(8, 36, size=(COCO_K, 2))
    joints = np.zeros((3, COCO_K, 3))
    joints[:, :, 2] = 1.0
    joints[0, :, :2] = base
    joints[1, :, :2] = base + [3.0, 0.0]
    joints[2, :, :2] = base + [1.5, 2.8]  # touches both (distance ~3.2 and ~3.2)
    person_tags = np.array([[0.0], [2.0], [4.0]])
    heatmaps, tags = render_maps(joints, person_tags, height, width, tag_radius=3.0)
    poses, _ = group_poses(heatmaps, tags)
    assert_decodes_exactly(poses, joints)


def test_positions_have_quarter_pixel_accuracy():
    """Integer peak + quarter-pixel adjust is within 0.25 px of the true (sub-pixel) centre."""
    rng = np.random.default_rng(3)
    joints = random_people(rng, 4, 64, 64)
    heatmaps, tags = render_maps(joints, np.arange(4.0)[:, None] * 3, 64, 64)
    poses, _ = group_poses(heatmaps, tags)
    assert_decodes_exactly(poses, joints, tolerance=0.25 + 1e-6)


def test_two_dimensional_tags_separate_what_each_dimension_alone_cannot():
    rng = np.random.default_rng(11)
    joints = random_people(rng, 4, 64, 64)
    # Each coordinate alone is shared by two people; only the 2-D tag separates all four.
    person_tags = np.array([[0.0, 0.0], [0.0, 3.0], [3.0, 0.0], [3.0, 3.0]])
    heatmaps, tags = render_maps(joints, person_tags, 64, 64)
    assert tags.shape[-1] == 2
    for distance in ("rms", "l2"):
        poses, _ = group_poses(heatmaps, tags, tag_distance=distance)
        assert_decodes_exactly(poses, joints)


def test_three_dimensional_tag_input_means_one_dimension():
    rng = np.random.default_rng(12)
    joints = random_people(rng, 3, 48, 48)
    heatmaps, tags = render_maps(joints, np.array([[0.0], [2.0], [4.0]]), 48, 48)
    poses_4d, scores_4d = group_poses(heatmaps, tags)
    poses_3d, scores_3d = group_poses(heatmaps, tags[..., 0])
    np.testing.assert_array_equal(poses_4d, poses_3d)
    np.testing.assert_array_equal(scores_4d, scores_3d)


def test_missing_joints_stay_missing_without_refine():
    rng = np.random.default_rng(5)
    joints = random_people(rng, 5, 64, 64, integer=True)
    joints[:, :, 2] = rng.random((5, COCO_K)) > 0.3
    joints[:, 0, 2] = 1.0
    heatmaps, tags = render_maps(joints, 2.0 * np.arange(5.0)[:, None], 64, 64)
    poses, scores = group_poses(heatmaps, tags, refine=False)
    assert_decodes_exactly(poses, joints)
    missing = poses[:, :, 2] == 0
    np.testing.assert_array_equal(poses[missing], 0.0)
    # Person score = mean over all K joints, missing ones counting 0.
    expected = np.sort(joints[:, :, 2].sum(axis=1) / COCO_K)[::-1]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


# ----------------------------------------------------------------------------- merging rules


def _split_person(tag_a: float, tag_b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Person A has the first 8 joints of the grouping order, person B the other 9."""
    rng = np.random.default_rng(21)
    joints = random_people(rng, 2, 64, 64, min_separation=5.0, integer=True)
    order = default_grouping_order(COCO_K)
    joints[0, list(order[8:]), 2] = 0.0
    joints[1, list(order[:8]), 2] = 0.0
    heatmaps, tags = render_maps(joints, np.array([[tag_a], [tag_b]]), 64, 64)
    return joints, heatmaps, tags


@pytest.mark.parametrize("tag_b", [0.4, 0.99, -0.99])
def test_tags_closer_than_threshold_merge_into_one_person(tag_b):
    joints, heatmaps, tags = _split_person(0.0, tag_b)
    poses, scores = group_poses(heatmaps, tags, refine=False)
    assert poses.shape[0] == 1
    merged = joints[0].copy()
    merged[joints[1, :, 2] > 0] = joints[1, joints[1, :, 2] > 0]
    assert_decodes_exactly(poses, merged[None])
    np.testing.assert_allclose(scores, [1.0], atol=1e-6)


@pytest.mark.parametrize("tag_b", [1.0, 1.5, -1.0])
def test_tags_at_or_beyond_threshold_stay_apart(tag_b):
    joints, heatmaps, tags = _split_person(0.0, tag_b)
    poses, scores = group_poses(heatmaps, tags, refine=False)
    assert_decodes_exactly(poses, joints)
    # A has 8 of 17 joints, B has 9: B ranks first.
    np.testing.assert_allclose(scores, [9 / 17, 8 / 17], rtol=1e-6)


def test_threshold_is_configurable():
    _, heatmaps, tags = _split_person(0.0, 1.5)
    assert group_poses(heatmaps, tags, refine=False, tag_threshold=2.0)[0].shape[0] == 1
    assert group_poses(heatmaps, tags, refine=False, tag_threshold=1.5)[0].shape[0] == 2


def test_one_candidate_per_person_and_joint_type():
    """Two same-type candidates with the same tag cannot both join a person: the weaker one
    starts a new person."""
    joints = np.zeros((2, COCO_K, 3))
    joints[0, :, :2] = np.stack([np.arange(5.0, 56.0, 3.0), np.full(COCO_K, 10.0)], 1)
    joints[0, :, 2] = 1.0
    joints[1, 9, :] = [30.0, 40.0, 0.8]  # a second left wrist
    heatmaps, tags = render_maps(joints, np.array([[1.0], [1.0]]), 64, 64)
    poses, scores = group_poses(heatmaps, tags, refine=False)
    assert poses.shape[0] == 2
    np.testing.assert_allclose(scores, [1.0, 0.8 / COCO_K], rtol=1e-5)
    np.testing.assert_allclose(poses[1, 9, :2] - 0.5, [30.0, 40.0], atol=0.25)


def test_seeds_come_from_the_first_joint_type_with_candidates():
    """Without noses, the next joint type in the official order (left eye) seeds people."""
    rng = np.random.default_rng(31)
    joints = random_people(rng, 3, 64, 64)
    joints[:, 0, 2] = 0.0
    heatmaps, tags = render_maps(joints, np.array([[0.0], [2.0], [4.0]]), 64, 64)
    poses, _ = group_poses(heatmaps, tags, refine=False)
    assert_decodes_exactly(poses, joints)


def test_grouping_order_defaults_and_validation():
    assert default_grouping_order(17) == keypoint_info.COCO.grouping_order
    assert default_grouping_order(14) == keypoint_info.CROWDPOSE.grouping_order
    assert default_grouping_order(5) == (0, 1, 2, 3, 4)
    heatmaps = np.zeros((8, 8, 5), np.float32)
    with pytest.raises(ValueError, match="permutation"):
        group_poses(heatmaps, np.zeros((8, 8, 5, 1)), grouping_order=[0, 1, 2, 3, 3])


def test_custom_grouping_order_changes_the_seed_joint():
    """Joint 4 seeds when it comes first; with K = 5 (no registered dataset) order is 0..4."""
    joints = np.zeros((2, 5, 3))
    joints[0, :, :] = [[10, 10, 1], [14, 10, 1], [18, 10, 1], [22, 10, 1], [26, 10, 1]]
    joints[1, 4, :] = [26, 30, 1]  # only person 2's joint 4 exists
    heatmaps, tags = render_maps(joints, np.array([[0.0], [3.0]]), 40, 40)
    for order in (None, [4, 3, 2, 1, 0]):
        poses, _ = group_poses(heatmaps, tags, grouping_order=order, refine=False)
        assert_decodes_exactly(poses, joints)


# ----------------------------------------------------------------------------- tie fix


def _noisy_tag_images(seed: int, num_images: int):
    """People whose per-joint tags scatter +-0.45 around tags 2 apart, ~30 % joints missing:
    true distances < 0.9, wrong ones > 1.1, and both often round to 1 (exact cost ties)."""
    rng = np.random.default_rng(seed)
    height = width = 64
    for _ in range(num_images):
        num_people = int(rng.integers(5, 16))
        joints = random_people(rng, num_people, height, width)
        joints[:, :, 2] = rng.random((num_people, COCO_K)) > 0.3
        joints[joints[:, :, 2].sum(axis=1) == 0, 5, 2] = 1.0
        heatmaps, _ = render_maps(joints, np.zeros((num_people, 1)), height, width)
        tags = np.full((height, width, COCO_K, 1), -100.0, np.float32)
        rows, cols = np.mgrid[0:height, 0:width]
        for person, joint in zip(*np.nonzero(joints[:, :, 2]), strict=True):
            x, y = joints[person, joint, :2]
            disk = (cols - x) ** 2 + (rows - y) ** 2 <= 2.0
            tags[disk, joint, 0] = 2.0 * person + rng.uniform(-0.45, 0.45)
        yield joints, heatmaps, tags


def test_tie_fix_keeps_the_person_count_exact_with_missing_joints():
    official_wrong = 0
    for joints, heatmaps, tags in _noisy_tag_images(seed=2024, num_images=30):
        poses, _ = group_poses(heatmaps, tags, refine=False)
        assert_decodes_exactly(poses, joints)
        official, _ = group_poses(heatmaps, tags, refine=False, block_distant_pairs=False)
        official_wrong += official.shape[0] != joints.shape[0]
    # The official cost's ties really do produce spurious people on these images.
    assert official_wrong >= 3, official_wrong


# ----------------------------------------------------------------------------- refine


def test_refine_fills_a_weak_joint_at_the_right_place():
    rng = np.random.default_rng(41)
    joints = random_people(rng, 3, 64, 64, min_separation=6.0)
    weak = {0: 9, 1: 14, 2: 0}  # person -> joint whose peak is below the threshold
    for person, joint in weak.items():
        joints[person, joint, 2] = 0.06
    heatmaps, tags = render_maps(joints, np.array([[0.0], [2.0], [4.0]]), 64, 64)

    unrefined, unrefined_scores = group_poses(heatmaps, tags, refine=False)
    refined, scores = group_poses(heatmaps, tags, refine=True)
    heatmap_scored, _ = group_poses(heatmaps, tags, refine=True, refine_score="heatmap")
    # Refine never changes person scores (computed before refine) nor the order.
    np.testing.assert_array_equal(scores, unrefined_scores)

    matched = match_people(refined, joints)
    for person, joint in weak.items():
        decoded = matched[person]
        assert unrefined[decoded, joint, 2] == 0.0
        np.testing.assert_allclose(
            refined[decoded, joint, :2] - 0.5, joints[person, joint, :2], atol=0.25 + 1e-6
        )
        assert refined[decoded, joint, 2] == 1.0
        np.testing.assert_allclose(heatmap_scored[decoded, joint, 2], 0.06, atol=0.01)
        # Joints that were grouped are untouched.
        others = np.arange(COCO_K) != joint
        np.testing.assert_array_equal(refined[decoded, others], unrefined[decoded, others])


def test_refine_uses_the_tag_not_the_strongest_peak():
    """Person 0's missing joint: a strong peak of person 1 (tag 2 away) and a weak peak with
    person 0's tag; refine must pick the weak one."""
    joints = np.zeros((2, COCO_K, 3))
    joints[:, :, 2] = 1.0
    joints[0, :, :2] = np.stack([np.linspace(4, 60, COCO_K), np.full(COCO_K, 8.0)], 1)
    joints[1, :, :2] = np.stack([np.linspace(4, 60, COCO_K), np.full(COCO_K, 40.0)], 1)
    joints[0, 13, 2] = 0.05
    heatmaps, tags = render_maps(joints, np.array([[0.0], [2.0]]), 64, 64)
    poses, _ = group_poses(heatmaps, tags)
    person = match_people(poses, joints)[0]
    np.testing.assert_allclose(poses[person, 13, :2] - 0.5, joints[0, 13, :2], atol=0.25 + 1e-6)


@pytest.mark.parametrize(
    "tag_a, tag_b", [([0.7], [0.2]), ([0.45, 0.45], [0.2, 0.2])], ids=["1d", "2d"]
)
def test_refine_rounds_the_l2_tag_distance(tag_a, tag_b):
    """Two sub-threshold peaks for the missing left knee: A (0.09) with a tag whose L2
    distance to the person's mean rounds to 1, B (0.05) with one that rounds to 0. The official
    value heat - round(||tag - mean||_2) picks B (0.05 > -0.91); flooring the distance, or the
    RMS distance for 2-D tags (0.45 -> 0), would pick A."""
    joints = np.zeros((3, COCO_K, 3))
    joints[0, :, :2] = np.stack([np.arange(4.0, 55.0, 3.0), np.full(COCO_K, 8.0)], 1)
    joints[0, :, 2] = 1.0
    joints[0, 13, 2] = 0.0
    joints[1, 13] = [20.0, 40.0, 0.09]
    joints[2, 13] = [44.0, 40.0, 0.05]
    person_tags = np.array([[0.0] * len(tag_a), tag_a, tag_b])
    heatmaps, tags = render_maps(joints, person_tags, 64, 64)
    poses, _ = group_poses(heatmaps, tags)
    assert poses.shape[0] == 1
    np.testing.assert_allclose(poses[0, 13, :2] - 0.5, [44.0, 40.0], atol=0.25 + 1e-6)


@pytest.mark.parametrize("tag_dim", [1, 2])
def test_refine_matches_a_naive_per_person_per_joint_loop(tag_dim):
    """Noisy maps (negative values included): the vectorised refine equals the official
    per-person, per-joint full-map argmax written out naively (corrected clamp)."""
    rng = np.random.default_rng(70 + tag_dim)
    height, width = 40, 48
    joints = random_people(rng, 6, height, width)
    joints[:, :, 2] = np.where(rng.random((6, COCO_K)) < 0.3, 0.0, rng.uniform(0.3, 1, (6, 17)))
    heatmaps, _ = render_maps(joints, np.zeros((6, 1)), height, width)
    heatmaps += rng.normal(0, 0.03, heatmaps.shape).astype(np.float32)
    # Multiples of 1/8: sums are exact, so the mean tags match bit for bit.
    tags = (rng.integers(-40, 40, (height, width, COCO_K, tag_dim)) / 8).astype(np.float32)
    unrefined, _ = group_poses(heatmaps, tags, refine=False, tag_threshold=3.0)
    refined, _ = group_poses(heatmaps, tags, refine=True, tag_threshold=3.0)
    assert len(unrefined) >= 3

    expected = unrefined.copy()
    for person, pose in enumerate(unrefined):
        present = np.flatnonzero(pose[:, 2] > 0)
        cols, rows = np.floor(pose[present, :2]).astype(int).T
        mean = tags[rows, cols, present].astype(np.float64).mean(axis=0).astype(np.float32)
        for joint in np.flatnonzero(pose[:, 2] == 0):
            heat = heatmaps[:, :, joint]
            distance = np.sqrt(np.sum(np.square(tags[:, :, joint] - mean), axis=-1))
            row, col = np.unravel_index(np.argmax(heat - np.round(distance)), heat.shape)
            if heat[row, col] <= 0:
                continue
            right, left = heat[row, min(col + 1, width - 1)], heat[row, max(col - 1, 0)]
            below, above = heat[min(row + 1, height - 1), col], heat[max(row - 1, 0), col]
            expected[person, joint] = [
                col + 0.5 + (0.25 if right > left else -0.25),
                row + 0.5 + (0.25 if below > above else -0.25),
                1.0,
            ]
    assert (expected[:, :, 2] > unrefined[:, :, 2]).sum() >= 5  # refine really filled joints
    np.testing.assert_array_equal(refined, expected)


def test_refine_skips_joints_without_any_response():
    rng = np.random.default_rng(43)
    joints = random_people(rng, 2, 48, 48)
    joints[:, 16, 2] = 0.0  # nobody has a right ankle: its heatmap is zero everywhere
    heatmaps, tags = render_maps(joints, np.array([[0.0], [2.0]]), 48, 48)
    poses, _ = group_poses(heatmaps, tags, refine=True)
    np.testing.assert_array_equal(poses[:, 16], 0.0)


def test_adjust_clamps_at_the_last_row_and_column():
    """Peaks on the bottom-right border, one grouped and one filled by refine: the neighbour
    beyond the border is clamped to the pixel itself (rows to H - 1, not to K - 1 as in the
    official refine), so both move +0.25 towards the border."""
    height, width = 40, 40
    joints = np.zeros((1, COCO_K, 3))
    joints[0, :, :2] = np.stack([np.linspace(3, 30, COCO_K), np.full(COCO_K, 20.0)], 1)
    joints[0, :, 2] = 1.0
    joints[0, 15, :] = [width - 1, height - 1, 1.0]  # grouped
    joints[0, 16, :] = [width - 5, height - 1, 0.05]  # filled by refine
    heatmaps, tags = render_maps(joints, np.array([[0.0]]), height, width)
    poses, _ = group_poses(heatmaps, tags)
    np.testing.assert_allclose(poses[0, 15, :2], [width - 0.25, height - 0.25])
    # Refined: x has equal neighbours (-0.25), y is at the border (+0.25).
    np.testing.assert_allclose(poses[0, 16, :2], [width - 5 + 0.25, height - 0.25])
    # Top-left corner: the clamped neighbour is the pixel itself, larger than the next one.
    joints[0, 15, :] = [0.0, 0.0, 1.0]
    heatmaps, tags = render_maps(joints, np.array([[0.0]]), height, width)
    poses, _ = group_poses(heatmaps, tags)
    np.testing.assert_allclose(poses[0, 15, :2], [0.25, 0.25])


def test_adjust_off_gives_pixel_corners():
    rng = np.random.default_rng(44)
    joints = random_people(rng, 3, 48, 48)
    heatmaps, tags = render_maps(joints, np.array([[0.0], [2.0], [4.0]]), 48, 48)
    poses, _ = group_poses(heatmaps, tags, adjust=False)
    np.testing.assert_array_equal(poses[:, :, :2] - 0.5, np.round(poses[:, :, :2] - 0.5))
    assert_decodes_exactly(poses, joints, tolerance=0.5)


# ----------------------------------------------------------------------------- limits, edge cases


def test_max_people_keeps_the_strongest_seeds():
    rng = np.random.default_rng(51)
    joints = random_people(rng, 10, 64, 64, integer=True)
    amplitudes = np.linspace(0.5, 0.95, 10)
    joints[:, :, 2] = amplitudes[:, None]
    heatmaps, tags = render_maps(joints, 2.0 * np.arange(10.0)[:, None], 64, 64)
    poses, scores = group_poses(heatmaps, tags, max_people=4)
    assert poses.shape == (4, COCO_K, 3)
    assert_decodes_exactly(poses, joints[-4:])
    np.testing.assert_allclose(scores, amplitudes[::-1][:4], rtol=1e-5)
    assert group_poses(heatmaps, tags, max_people=0)[0].shape == (0, COCO_K, 3)


def test_top_k_limits_candidates_per_joint():
    rng = np.random.default_rng(52)
    joints = random_people(rng, 6, 64, 64, integer=True)
    joints[:, :, 2] = np.linspace(0.5, 1.0, 6)[:, None]
    heatmaps, tags = render_maps(joints, 2.0 * np.arange(6.0)[:, None], 64, 64)
    poses, scores = group_poses(heatmaps, tags, top_k=2, refine=False)
    # The two strongest people win every joint type's top-2.
    assert_decodes_exactly(poses, joints[-2:])
    np.testing.assert_allclose(scores, [1.0, 0.9], rtol=1e-6)


@pytest.mark.parametrize("tag_dim", [1, 2])
def test_empty_maps_give_no_people(tag_dim):
    for heatmaps in (np.zeros((32, 32, COCO_K)), np.full((32, 32, COCO_K), 0.1)):
        poses, scores = group_poses(heatmaps, np.zeros((32, 32, COCO_K, tag_dim)))
        assert poses.shape == (0, COCO_K, 3) and poses.dtype == np.float32
        assert scores.shape == (0,) and scores.dtype == np.float32


def test_detection_threshold_is_strict():
    joints = np.zeros((1, COCO_K, 3))
    joints[0, :, :2] = np.stack([np.linspace(3, 30, COCO_K), np.full(COCO_K, 10.0)], 1)
    joints[0, :, 2] = 0.5
    heatmaps, tags = render_maps(joints, np.array([[0.0]]), 32, 32)
    assert group_poses(heatmaps, tags, detection_threshold=0.49)[0].shape[0] == 1
    assert group_poses(heatmaps, tags, detection_threshold=0.5)[0].shape[0] == 0


def test_nms_kernel_merges_nearby_peaks():
    """Two peaks 2 px apart are two candidates with a 3x3 NMS and one with 5x5."""
    joints = np.zeros((2, 1, 3))
    joints[:, 0] = [[10.0, 10.0, 1.0], [12.0, 10.0, 0.9]]
    heatmaps, tags = render_maps(joints, np.array([[0.0], [5.0]]), 24, 24, tag_radius=1.0)
    assert group_poses(heatmaps, tags, nms_kernel=3)[0].shape[0] == 2
    assert group_poses(heatmaps, tags, nms_kernel=5)[0].shape[0] == 1
    with pytest.raises(ValueError, match="odd"):
        group_poses(heatmaps, tags, nms_kernel=4)


def test_deterministic_output_and_order():
    joints, heatmaps, tags = next(_noisy_tag_images(seed=77, num_images=1))
    # Equal peak heights make many exact score ties; order must still be reproducible.
    first = group_poses(heatmaps, tags)
    for _ in range(3):
        again = group_poses(heatmaps.copy(), np.asfortranarray(tags))
        np.testing.assert_array_equal(first[0], again[0])
        np.testing.assert_array_equal(first[1], again[1])
    assert np.all(np.diff(first[1]) <= 0)


@pytest.mark.parametrize(
    "heatmaps, tags, message",
    [
        (np.zeros((8, 8)), np.zeros((8, 8, 1)), "heatmaps must be"),
        (np.zeros((0, 8, 3)), np.zeros((0, 8, 3, 1)), "heatmaps must be"),
        (np.zeros((8, 8, 3)), np.zeros((8, 9, 3, 1)), "tags must be"),
        (np.full((8, 8, 3), np.nan), np.zeros((8, 8, 3, 1)), "finite"),
    ],
)
def test_bad_input_raises(heatmaps, tags, message):
    with pytest.raises(ValueError, match=message):
        group_poses(heatmaps, tags)


def test_bad_options_raise():
    heatmaps, tags = np.zeros((8, 8, 3)), np.zeros((8, 8, 3, 1))
    with pytest.raises(ValueError, match="tag_distance"):
        group_poses(heatmaps, tags, tag_distance="cosine")
    with pytest.raises(ValueError, match="refine_score"):
        group_poses(heatmaps, tags, refine_score="max")


def test_more_joint_types_than_one_opencv_call_takes():
    """NMS runs OpenCV in chunks of 128 channels; 150 joint types must still decode."""
    rng = np.random.default_rng(61)
    joints = random_people(rng, 2, 24, 24, num_joints=150)
    heatmaps, tags = render_maps(joints, np.array([[0.0], [2.0]]), 24, 24)
    poses, _ = group_poses(heatmaps, tags)
    assert_decodes_exactly(poses, joints)


def test_symmetric_adjust_keeps_a_symmetric_peak_centred():
    """Official adjust moves -0.25 px on equal neighbours; 'symmetric' stays at the centre."""
    heatmaps = np.zeros((9, 9, 1), np.float32)
    heatmaps[4, 4, 0] = 1.0
    heatmaps[3, 4, 0] = heatmaps[5, 4, 0] = 0.5  # equal neighbours on the y axis
    heatmaps[4, 3, 0] = 0.4
    heatmaps[4, 5, 0] = 0.6  # larger right neighbour on the x axis
    tags = np.zeros((9, 9, 1, 1), np.float32)
    official, _ = group_poses(heatmaps, tags, grouping_order=[0], refine=False)
    symmetric, _ = group_poses(
        heatmaps, tags, grouping_order=[0], refine=False, adjust="symmetric"
    )
    np.testing.assert_allclose(official[0, 0, :2], [4.75, 4.25])
    np.testing.assert_allclose(symmetric[0, 0, :2], [4.75, 4.5])


def test_unknown_adjust_mode_is_rejected():
    with pytest.raises(ValueError, match="adjust"):
        group_poses(np.zeros((4, 4, 1), np.float32), np.zeros((4, 4, 1), np.float32),
                    grouping_order=[0], adjust="sideways")


@pytest.mark.parametrize("num_people", [1, 4, 9])
def test_taylor_adjust_recovers_sub_pixel_gaussian_centres(num_people):
    """Sub-pixel Gaussians decode to their exact centres (the official adjust is off by up to
    a quarter pixel), with refine filling a weak joint the same way."""
    rng = np.random.default_rng(num_people)
    joints = random_people(rng, num_people, 48, 48, min_separation=8.0)
    heatmaps, tags = render_maps(joints, np.arange(num_people) * 3.0, 48, 48, sigma=1.5)
    poses, _ = group_poses(heatmaps, tags, adjust="taylor")
    assert_decodes_exactly(poses, joints, tolerance=1e-3)
    official, _ = group_poses(heatmaps, tags)
    assert_decodes_exactly(official, joints, tolerance=0.5)
    assert np.abs(official[match_people(official, joints)][..., :2] - 0.5
                  - joints[..., :2]).max() > 0.1


def test_taylor_offsets_fall_back_to_the_pixel_without_a_log_parabola():
    """No offset at the map border, next to a zero value or on a flat axis; at most half a
    pixel otherwise; exact for a sampled Gaussian."""
    heatmaps = np.zeros((7, 7, 5), np.float32)
    heatmaps[0, 3, 0], heatmaps[1, 3, 0] = 1.0, 0.5  # row 0: border on y
    heatmaps[3, 3, 1] = 1.0  # zero neighbours: no log
    heatmaps[3, 2:5, 2] = 0.8  # flat along x: second derivative 0
    heatmaps[3, 2:5, 3] = [1e-6, 1.0, 0.99]  # the parabola's vertex is beyond half a pixel
    heatmaps[3, 2:5, 4] = np.exp(-((np.arange(2, 5) - 3.3) ** 2) / 2.0)
    ys = np.array([0, 3, 3, 3, 3])
    xs = np.array([3, 3, 3, 3, 3])
    joints = np.arange(5)
    along_y = _taylor_offsets(heatmaps, ys, xs, joints, axis=0)
    along_x = _taylor_offsets(heatmaps, ys, xs, joints, axis=1)
    assert along_y[0] == 0.0 and along_x[0] == 0.0
    assert along_x[1] == 0.0 and along_y[1] == 0.0
    assert along_x[2] == 0.0
    assert 0.0 < along_x[3] <= 0.5
    assert along_x[4] == pytest.approx(0.3, abs=1e-5)


def test_max_pool_of_large_maps_equals_the_scipy_filter():
    # Maps of 1024 x 1024 (an unresized photo at stride 1) once failed inside OpenCV's border
    # copy; the pool must stay the -inf-bordered max of every 3 x 3 window.
    from scipy.ndimage import maximum_filter

    from associative_embedding.codec.decode import _max_pool

    maps = np.random.default_rng(0).random((1024, 1024, 17), dtype=np.float32)
    expected = maximum_filter(maps, size=(3, 3, 1), mode="constant", cval=-np.inf)
    np.testing.assert_array_equal(_max_pool(maps, 3), expected)
