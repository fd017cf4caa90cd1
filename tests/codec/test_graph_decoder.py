"""Tests of the in-graph decoder (codec/graph_decoder.py) against the NumPy decoder.

The reference is ``associative_embedding.codec.group_poses``: the TensorFlow port must return
the same people (bit-identical except for the float32 ulp of ``adjust="taylor"``), eagerly, in
a ``tf.function`` with dynamic map sizes and after a SavedModel round trip.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.codec import group_poses
from associative_embedding.codec.graph_decoder import (
    build_group_poses_function,
    group_poses_padded_tf,
    group_poses_tf,
)

COCO_K = 17


def synthetic_maps(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    num_people: int,
    num_joints: int = COCO_K,
    tag_dim: int = 1,
    missing: float = 0.25,
    num_false_peaks: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network-like outputs with the difficulties of real ones.

    People's joints scatter around a person centre (so people overlap and joints of one type
    can merge into one peak), ``missing`` of the joints are absent, peaks have random
    amplitude (0.3-1) and sigma (1.5-2.5), the heatmaps carry uniform noise below the
    detection threshold plus ``num_false_peaks`` false peaks per map with random tags. Person
    tags are drawn so close together that some candidates are within the tag threshold of
    two people (contested assignments); each joint writes its person's tag plus per-pixel
    noise on a disk of radius 3, random background tags elsewhere.

    Returns:
        joints: (P, K, 3) (x, y, amplitude) in pixel-centre coordinates, amplitude 0 = absent.
        heatmaps: (h, w, K) float32.
        tags: (h, w, K, D) float32.
    """
    heatmaps = rng.uniform(0.0, 0.08, (height, width, num_joints)).astype(np.float32)
    tags = rng.normal(0.0, 3.0, (height, width, num_joints, tag_dim)).astype(np.float32)
    person_tags = rng.normal(0.0, 0.8 * max(num_people, 1), (num_people, tag_dim))
    rows, cols = np.mgrid[0:height, 0:width]
    joints = np.zeros((num_people, num_joints, 3))

    def draw_peak(joint, x, y, amplitude, tag):
        sigma = rng.uniform(1.5, 2.5)
        squared = (cols - x) ** 2 + (rows - y) ** 2
        peak = amplitude * np.exp(-squared / (2.0 * sigma**2))
        heatmaps[:, :, joint] = np.maximum(heatmaps[:, :, joint], peak)
        disk = squared <= 9.0
        tags[disk, joint] = tag + rng.normal(0.0, 0.15, (int(disk.sum()), tag_dim))

    for person in range(num_people):
        centre = rng.uniform([4.0, 4.0], [width - 5.0, height - 5.0])
        spread = rng.uniform(3.0, 12.0)
        for joint in range(num_joints):
            if rng.random() < missing:
                continue
            x, y = np.clip(centre + rng.normal(0.0, spread, 2), 0, [width - 1, height - 1])
            amplitude = rng.uniform(0.3, 1.0)
            joints[person, joint] = x, y, amplitude
            draw_peak(joint, x, y, amplitude, person_tags[person])
    for _ in range(num_false_peaks):
        joint = int(rng.integers(num_joints))
        x, y = rng.uniform([0.0, 0.0], [width - 1.0, height - 1.0])
        draw_peak(joint, x, y, rng.uniform(0.1, 0.5), rng.normal(0.0, 3.0, tag_dim))
    return joints, heatmaps, tags


def clean_maps(num_people: int, height: int = 48, width: int = 56, tag_dim: int = 1):
    """Separated people on integer pixels with all joints, tags 2 apart: (joints, maps...)."""
    rng = np.random.default_rng(num_people)
    joints = np.zeros((num_people, COCO_K, 3))
    joints[:, :, 2] = np.linspace(1.0, 0.6, num_people)[:, None]
    heatmaps = np.zeros((height, width, COCO_K), np.float32)
    tags = np.full((height, width, COCO_K, tag_dim), -50.0, np.float32)
    rows, cols = np.mgrid[0:height, 0:width]
    for joint in range(COCO_K):
        cells = rng.permutation((height // 8) * (width // 8))[:num_people]
        for person, cell in enumerate(cells):
            y, x = 8 * (cell // (width // 8)) + 4, 8 * (cell % (width // 8)) + 4
            joints[person, joint, :2] = x, y
            squared = (cols - x) ** 2 + (rows - y) ** 2
            peak = joints[person, joint, 2] * np.exp(-squared / 8.0)
            heatmaps[:, :, joint] = np.maximum(heatmaps[:, :, joint], peak)
            tags[squared <= 4, joint] = 2.0 * person
    return joints, heatmaps, tags


@functools.cache
def cached_decoder(num_joints: int, tag_dim: int, **options):
    """One traced decoder per configuration for the whole session (tracing takes seconds)."""
    return build_group_poses_function(num_joints, tag_dim, **options)


def decode(heatmaps, tags, **options):
    poses, scores = cached_decoder(heatmaps.shape[2], tags.shape[3], **options)(heatmaps, tags)
    return poses.numpy(), scores.numpy()


def decode_eagerly(heatmaps, tags, **options):
    poses, scores = group_poses_tf(tf.constant(heatmaps), tf.constant(tags), **options)
    return poses.numpy(), scores.numpy()


def agreeing_persons(reference: np.ndarray, decoded: np.ndarray) -> tuple[int, int]:
    """(persons that agree, persons): with the same person count, a person agrees when the
    same joints are present and each is within 1 px; otherwise no person of the image
    agrees. People are compared in output order (both decoders sort by score)."""
    persons = max(len(reference), len(decoded))
    if len(reference) != len(decoded):
        return 0, persons
    same_joints = (reference[:, :, 2] > 0) == (decoded[:, :, 2] > 0)
    close = np.abs(reference[:, :, :2] - decoded[:, :, :2]).max(axis=2, initial=0.0) <= 1.0
    return int((same_joints & close).all(axis=1).sum()), persons


def assert_same_decoding(heatmaps, tags, decoded, atol: float = 0.0, **options):
    poses, scores = group_poses(heatmaps, tags, **options)
    assert decoded[0].shape == poses.shape and decoded[1].shape == scores.shape
    assert decoded[0].dtype == np.float32 and decoded[1].dtype == np.float32
    if atol:
        np.testing.assert_allclose(decoded[0], poses, rtol=0, atol=atol)
    else:
        np.testing.assert_array_equal(decoded[0], poses)
    np.testing.assert_array_equal(decoded[1], scores)


# ----------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("tag_dim", [1, 2, 3])
def test_agrees_with_numpy_decoder_on_synthetic_maps(tag_dim):
    rng = np.random.default_rng(100 + tag_dim)
    agreeing = persons = identical = 0
    num_images = 50
    for _ in range(num_images):
        height, width = (int(n) for n in rng.integers(32, 80, 2))
        _, heatmaps, tags = synthetic_maps(
            rng, height, width, num_people=int(rng.integers(0, 16)), tag_dim=tag_dim
        )
        reference = group_poses(heatmaps, tags)
        decoded = decode(heatmaps, tags)
        agree, total = agreeing_persons(reference[0], decoded[0])
        agreeing, persons = agreeing + agree, persons + total
        identical += all(np.array_equal(a, b) for a, b in zip(reference, decoded, strict=True))
    assert persons > 200
    # The acceptance (>= 98 % of persons); the port is in fact bit-identical.
    assert agreeing >= 0.98 * persons, (agreeing, persons)
    assert identical >= 0.95 * num_images, identical


@pytest.mark.parametrize("num_people", [1, 5, 12])
def test_clean_maps_decode_identically_to_the_people(num_people):
    joints, heatmaps, tags = clean_maps(num_people)
    decoded = decode_eagerly(heatmaps, tags)
    assert_same_decoding(heatmaps, tags, decoded)
    # Adjust moves -0.25 on a symmetric peak (the official rule), +0.5 to corners.
    np.testing.assert_array_equal(decoded[0][:, :, :2], joints[:, :, :2] + 0.25)
    np.testing.assert_allclose(decoded[1], joints[:, 0, 2], rtol=1e-6)


# Options each exercised eagerly on one contested image (several D, missing joints).
OPTION_CASES = [
    {"adjust": True},
    {"adjust": "symmetric"},
    {"adjust": False},
    {"refine": False},
    {"refine_score": "heatmap"},
    {"block_distant_pairs": False},
    {"tag_distance": "l2"},
    {"nms_kernel": 1, "detection_threshold": 0.8},
    {"nms_kernel": 5},
    {"grouping_order": tuple(reversed(range(COCO_K))), "tag_threshold": 0.6},
    {"top_k": 2},
    {"max_people": 4},
]


@pytest.mark.parametrize("options", OPTION_CASES, ids=lambda o: "-".join(map(str, o.items())))
def test_options_match_numpy_eagerly(options):
    rng = np.random.default_rng(7)
    _, heatmaps, tags = synthetic_maps(rng, 40, 48, num_people=7, tag_dim=2, missing=0.3)
    decoded = decode_eagerly(heatmaps, tags, **options)
    assert_same_decoding(heatmaps, tags, decoded, **options)
    if "max_people" in options:
        assert decoded[0].shape[0] == options["max_people"]
        assert group_poses(heatmaps, tags)[0].shape[0] > options["max_people"]


def test_taylor_adjust_matches_to_float32_rounding():
    rng = np.random.default_rng(8)
    _, heatmaps, tags = synthetic_maps(rng, 40, 48, num_people=7, tag_dim=1)
    decoded = decode_eagerly(heatmaps, tags, adjust="taylor")
    # tf.math.log and np.log may differ in the last float64 bit: 1 float32 ulp at x < 64.
    assert_same_decoding(heatmaps, tags, decoded, atol=4e-6, adjust="taylor")
    offsets = decoded[0][:, :, :2] - np.floor(decoded[0][:, :, :2])
    assert np.any((offsets != 0.25) & (offsets != 0.75) & (offsets != 0.5))  # sub-pixel


def test_tie_heavy_official_cost_matches_scipy_tie_breaking():
    # Tags 2 apart with +-0.45 scatter: right and wrong pairs both round to 1 and tie; the
    # official cost (block_distant_pairs=False) then depends on the solver's tie-breaking.
    rng = np.random.default_rng(2024)
    height = width = 48
    rows, cols = np.mgrid[0:height, 0:width]
    for _ in range(3):
        num_people = int(rng.integers(5, 10))
        joints, heatmaps, _ = synthetic_maps(
            rng, height, width, num_people=num_people, missing=0.3, num_false_peaks=0
        )
        tags = np.full((height, width, COCO_K, 1), -100.0, np.float32)
        for person, joint in zip(*np.nonzero(joints[:, :, 2]), strict=True):
            x, y = joints[person, joint, :2]
            disk = (cols - x) ** 2 + (rows - y) ** 2 <= 2.0
            tags[disk, joint, 0] = 2.0 * person + rng.uniform(-0.45, 0.45)
        for options in ({"block_distant_pairs": False, "refine": False}, {"refine": False}):
            assert_same_decoding(
                heatmaps, tags, decode_eagerly(heatmaps, tags, **options), **options
            )


def test_other_joint_counts_and_three_dimensional_tags():
    rng = np.random.default_rng(9)
    _, heatmaps, tags = synthetic_maps(rng, 36, 36, num_people=4, num_joints=14)
    decoded = decode_eagerly(heatmaps, tags[..., 0])  # (h, w, K) tags mean D = 1
    assert_same_decoding(heatmaps, tags, decoded)


@pytest.mark.parametrize("tag_dim", [1, 2])
def test_empty_maps_give_no_people(tag_dim):
    for heatmaps in (np.zeros((32, 24, COCO_K), np.float32), np.full((32, 24, COCO_K), 0.1)):
        heatmaps = heatmaps.astype(np.float32)
        tags = np.zeros((32, 24, COCO_K, tag_dim), np.float32)
        for poses, scores in (decode(heatmaps, tags), decode_eagerly(heatmaps, tags)):
            assert poses.shape == (0, COCO_K, 3) and poses.dtype == np.float32
            assert scores.shape == (0,) and scores.dtype == np.float32
    poses, scores = decode_eagerly(*clean_maps(3)[1:], max_people=0)
    assert poses.shape == (0, COCO_K, 3) and scores.shape == (0,)


def test_tiny_maps_with_fewer_pixels_than_top_k():
    heatmaps = np.zeros((3, 4, COCO_K), np.float32)
    heatmaps[1, 2] = 0.9
    heatmaps[0, 0, :5] = 0.5
    tags = np.zeros((3, 4, COCO_K, 1), np.float32)
    tags[0, 0] = 5.0
    for decoded in (decode(heatmaps, tags), decode_eagerly(heatmaps, tags)):
        assert_same_decoding(heatmaps, tags, decoded)
        assert decoded[0].shape[0] == 2


# ----------------------------------------------------------------------------- graph, SavedModel


def test_one_trace_serves_every_map_size():
    decoder = cached_decoder(COCO_K, 1)
    rng = np.random.default_rng(11)
    for height, width in ((48, 64), (80, 40)):
        _, heatmaps, tags = synthetic_maps(rng, height, width, num_people=5)
        graph = decode(heatmaps, tags)
        eager = decode_eagerly(heatmaps, tags)
        assert_same_decoding(heatmaps, tags, graph)
        for graph_array, eager_array in zip(graph, eager, strict=True):
            np.testing.assert_array_equal(graph_array, eager_array)
    assert decoder.experimental_get_tracing_count() == 1


def test_saved_model_round_trip(tmp_path):
    tag_dim = 2
    decoder = cached_decoder(COCO_K, tag_dim)

    class PoseDecoder(tf.Module):
        def __init__(self):
            super().__init__()
            self.decode = decoder

        @tf.function(input_signature=decoder.input_signature)
        def serve(self, heatmaps, tags):
            poses, scores = self.decode(heatmaps, tags)
            return {"poses": poses, "scores": scores}

    module = PoseDecoder()
    tf.saved_model.save(module, str(tmp_path), signatures={"decode_poses": module.serve})
    loaded = tf.saved_model.load(str(tmp_path))
    rng = np.random.default_rng(12)
    for height, width in ((40, 56), (64, 48)):
        _, heatmaps, tags = synthetic_maps(rng, height, width, num_people=6, tag_dim=tag_dim)
        outputs = loaded.signatures["decode_poses"](heatmaps=tf.constant(heatmaps),
                                                     tags=tf.constant(tags))
        assert_same_decoding(heatmaps, tags, (outputs["poses"].numpy(),
                                              outputs["scores"].numpy()))
        poses, scores = loaded.decode(heatmaps, tags)
        assert_same_decoding(heatmaps, tags, (poses.numpy(), scores.numpy()))


def test_padded_outputs_put_the_people_first_then_zeros():
    rng = np.random.default_rng(13)
    _, heatmaps, tags = synthetic_maps(rng, 40, 40, num_people=5)
    poses, scores, num_people = (
        t.numpy() for t in group_poses_padded_tf(heatmaps, tags, max_people=12)
    )
    assert poses.shape == (12, COCO_K, 3) and scores.shape == (12,)
    assert 0 < num_people < 12
    assert_same_decoding(heatmaps, tags, (poses[:num_people], scores[:num_people]),
                         max_people=12)
    assert not poses[num_people:].any() and not scores[num_people:].any()


def test_padded_decoder_compiles_with_xla():
    # One XLA compilation per map size (a few seconds), then none for new values: every
    # shape inside is static and indexing uses gathers.
    decoder = tf.function(
        lambda heatmaps, tags: group_poses_padded_tf(heatmaps, tags),
        jit_compile=True,
        input_signature=[
            tf.TensorSpec([None, None, COCO_K], tf.float32),
            tf.TensorSpec([None, None, COCO_K, 2], tf.float32),
        ],
    )
    rng = np.random.default_rng(14)
    for _ in range(3):
        _, heatmaps, tags = synthetic_maps(rng, 32, 40, num_people=6, tag_dim=2)
        poses, scores, num_people = decoder(heatmaps, tags)
        assert_same_decoding(
            heatmaps, tags, (poses[:num_people].numpy(), scores[:num_people].numpy())
        )
    hlo = decoder.experimental_get_compiler_ir(heatmaps, tags)(stage="hlo")
    # The maps are parameters of the compiled program, not folded constants.
    assert "f32[32,40,17]" in next(line for line in hlo.splitlines() if "ENTRY" in line)


# ----------------------------------------------------------------------------- errors


def test_bad_options_and_shapes_raise():
    heatmaps = np.zeros((8, 8, COCO_K), np.float32)
    tags = np.zeros((8, 8, COCO_K, 1), np.float32)
    for options, message in (
        ({"nms_kernel": 2}, "nms_kernel"),
        ({"top_k": 0}, "top_k"),
        ({"max_people": -1}, "max_people"),
        ({"tag_distance": "cosine"}, "tag_distance"),
        ({"refine_score": "max"}, "refine_score"),
        ({"adjust": "dark"}, "adjust"),
        ({"grouping_order": [0, 1]}, "grouping_order"),
    ):
        with pytest.raises(ValueError, match=message):
            group_poses_tf(heatmaps, tags, **options)
        with pytest.raises(ValueError, match=message):
            build_group_poses_function(COCO_K, 1, **options)
    with pytest.raises(TypeError, match="threshold"):
        build_group_poses_function(COCO_K, 1, threshold=0.2)
    with pytest.raises(ValueError, match="tags must be"):
        group_poses_tf(heatmaps, np.zeros((8, 9, COCO_K, 1), np.float32))
    with pytest.raises(ValueError, match="heatmaps must be"):
        group_poses_tf(heatmaps[0], tags)


def test_bad_values_raise_at_run_time():
    heatmaps = np.zeros((8, 8, COCO_K), np.float32)
    tags = np.zeros((8, 8, COCO_K, 1), np.float32)
    heatmaps[2, 3, 4] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="heatmaps must be finite"):
        decode_eagerly(heatmaps, tags)
    with pytest.raises(tf.errors.InvalidArgumentError, match="heatmaps must be finite"):
        decode(heatmaps, tags)
    heatmaps[2, 3, 4] = 0.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="must match heatmaps"):
        decode(heatmaps, np.zeros((8, 7, COCO_K, 1), np.float32))
