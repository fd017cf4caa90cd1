"""Person-crop pipeline of the refinement network: crop rule, targets, flip, mask, tf.data."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf

from associative_embedding.core import transforms
from associative_embedding.core.keypoint_info import get_keypoint_info
from associative_embedding.core.record import PoseRecord
from associative_embedding.data.augment import AugmentConfig
from associative_embedding.tasks.refinement import data as refine_data

COCO = get_keypoint_info("coco")
K = COCO.num_joints
LEFT_SHOULDER, RIGHT_SHOULDER = 5, 6
SIZE = 64  # crop side S; 16 x 16 heatmaps


def _params(**overrides) -> dict[str, tf.Tensor]:
    params = refine_data.identity_augmentation()
    for key, value in overrides.items():
        params[key] = tf.constant(value, params[key].dtype)
    return params


def _person(rng: np.random.Generator, centre, spread, num_labelled=K) -> np.ndarray:
    person = np.zeros((K, 3), np.float32)
    person[:, :2] = np.asarray(centre) + rng.uniform(-spread, spread, (K, 2))
    person[:num_labelled, 2] = 2
    return person


def _record(image: np.ndarray, keypoints: np.ndarray, image_id=1, ignore_rle=None) -> PoseRecord:
    ok, png = cv2.imencode(".png", image[..., ::-1])
    assert ok
    num_people = len(keypoints)
    return PoseRecord(
        image_id=image_id, file_name="", height=image.shape[0], width=image.shape[1],
        keypoints=keypoints, boxes=np.zeros((num_people, 4)), areas=np.full(num_people, 900.0),
        annotation_ids=np.arange(num_people), image_bytes=png.tobytes(), ignore_rle=ignore_rle,
    )


def _crop_numpy(box, crop_size, min_side=60.0, margin=1.3) -> np.ndarray:
    """The documented crop rule, written independently of the TF code."""
    x, y, w, h = box
    side = max(w, h, min_side) * margin
    centre_x, centre_y = x + w / 2.0, y + h / 2.0
    zoom = crop_size / side
    half = (crop_size - 1) / 2.0
    return np.array(
        [[zoom, 0.0, half - zoom * centre_x], [0.0, zoom, half - zoom * centre_y], [0, 0, 1]]
    )


def test_crop_affine_is_the_documented_rule():
    for box in ([10.0, 20.0, 100.0, 40.0], [5.0, 5.0, 20.0, 30.0], [0.0, 0.0, 30.0, 90.0]):
        actual = refine_data.person_crop_affine(tf.constant(box, tf.float64), 256).numpy()
        np.testing.assert_allclose(actual, _crop_numpy(box, 256), atol=1e-9)
    # Small people get the 60-pixel minimum: side 78, the box centre at the crop centre.
    affine = refine_data.person_crop_affine(tf.constant([50.0, 50.0, 10.0, 20.0]), 256).numpy()
    assert affine[0, 0] == pytest.approx(256 / 78.0)
    np.testing.assert_allclose(affine @ [55.0, 60.0, 1.0], [127.5, 127.5, 1.0], atol=1e-9)


def test_crop_affine_agrees_with_the_inference_crops():
    crops = pytest.importorskip("associative_embedding.tasks.refinement.crops")
    box = np.array([12.0, 30.0, 45.0, 120.0])
    for size in (128, 256):
        np.testing.assert_allclose(
            refine_data.person_crop_affine(tf.constant(box), size).numpy(),
            crops.person_crop_affine(box, size),
            atol=1e-9,
        )
    pose = np.array([[10.0, 20.0, 0.9], [50.0, 80.0, 0.5], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(
        refine_data.keypoint_box(tf.constant(pose)).numpy(), crops.keypoint_box(pose), atol=1e-9
    )
    # The training crop (TF warp) and the inference crop (cv2) are the same pixels, borders
    # included.
    image = np.random.default_rng(5).integers(0, 255, (100, 70, 3), dtype=np.uint8)
    for person_box in (box, [-8.0, 50.0, 30.0, 70.0], [40.0, 3.0, 5.0, 5.0]):
        affine = crops.person_crop_affine(np.asarray(person_box), 128)
        np.testing.assert_allclose(
            refine_data.crop_image(image, affine, 128).numpy(),
            crops.crop_image(image.astype(np.float32) / 255.0, affine, 128),
            atol=1e-5,
        )


def test_keypoint_box_uses_labelled_joints_only():
    person = np.zeros((K, 3), np.float32)
    person[0] = [10, 40, 2]
    person[3] = [30, 15, 1]
    person[4] = [500, 500, 0]  # unlabelled: ignored
    np.testing.assert_allclose(refine_data.keypoint_box(person).numpy(), [10, 15, 20, 25])


def test_known_joint_lands_at_its_output_pixel_and_image_content_follows():
    rng = np.random.default_rng(0)
    image = np.zeros((120, 160, 3), np.uint8)
    person = _person(rng, (70, 60), 30)
    # A bright 3x3 dot on the left shoulder: the crop must show it where the heatmap peaks.
    shoulder_x, shoulder_y = 63, 48
    person[LEFT_SHOULDER, :2] = (shoulder_x, shoulder_y)
    image[shoulder_y - 1:shoulder_y + 2, shoulder_x - 1:shoulder_x + 2] = 255
    cropper = refine_data.PersonCropper(AugmentConfig.identity(SIZE), COCO.flip_index)
    result = cropper(image, person[None], 0, None, seed=[0, 0])

    box = refine_data.keypoint_box(person).numpy()
    affine = _crop_numpy(box, SIZE)
    x_crop, y_crop, _ = affine @ [shoulder_x, shoulder_y, 1.0]
    expected = (int(np.floor((y_crop + 0.5) / 4)), int(np.floor((x_crop + 0.5) / 4)))
    heatmap = result["heatmaps"].numpy()[..., LEFT_SHOULDER]
    assert np.unravel_index(heatmap.argmax(), heatmap.shape) == expected
    assert heatmap[expected] == 1.0
    np.testing.assert_allclose(result["input_from_image"].numpy(), affine, atol=1e-9)
    crop = result["image"].numpy().sum(axis=-1)
    peak = np.unravel_index(crop.argmax(), crop.shape)
    assert abs(peak[0] - y_crop) <= 1 and abs(peak[1] - x_crop) <= 1
    # One person: every labelled joint inside the crop is a target, nothing else.
    assert result["keypoints"].shape == (1, K, 3)
    assert result["keypoints"].numpy()[0, :, 2].sum() == K


def test_other_people_are_background_unless_asked():
    rng = np.random.default_rng(1)
    image = np.zeros((100, 100, 3), np.uint8)
    first = _person(rng, (50, 50), 20)
    second = first.copy()
    second[:, 0] += 6.0  # beside the first person, inside its crop
    keypoints = np.stack([first, second])
    augment_config = AugmentConfig.identity(SIZE)
    plain = refine_data.PersonCropper(augment_config, COCO.flip_index)(
        image, keypoints, 0, None, seed=[0, 0]
    )
    alone = refine_data.PersonCropper(augment_config, COCO.flip_index)(
        image, first[None], 0, None, seed=[0, 0]
    )
    np.testing.assert_array_equal(plain["heatmaps"].numpy(), alone["heatmaps"].numpy())
    assert plain["mask"].numpy().min() == 1.0

    ignoring = refine_data.PersonCropper(
        augment_config, COCO.flip_index,
        refine_data.PersonCropConfig(ignore_other_people=True),
    )(image, keypoints, 0, None, seed=[0, 0])
    mask = ignoring["mask"].numpy()
    own = alone["heatmaps"].numpy().max(axis=-1) > 0
    assert mask.min() == 0.0
    assert np.all(mask[own] == 1.0)  # the person's own target pixels stay supervised


def test_flip_swaps_joints_and_mirrors_everything():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (90, 110, 3), dtype=np.uint8)
    person = _person(rng, (55, 45), 25)
    cropper = refine_data.PersonCropper(AugmentConfig.identity(SIZE), COCO.flip_index)
    straight = cropper(image, person[None], 0, None, seed=[0, 0], params=_params())
    flipped = cropper(image, person[None], 0, None, seed=[0, 0], params=_params(flip=True))
    np.testing.assert_allclose(
        flipped["image"].numpy(), straight["image"].numpy()[:, ::-1], atol=1e-5
    )
    index = list(COCO.flip_index)
    np.testing.assert_array_equal(
        flipped["heatmaps"].numpy(), straight["heatmaps"].numpy()[:, ::-1, index]
    )
    # The left shoulder of the flipped crop is the mirrored right shoulder.
    left = flipped["heatmaps"].numpy()[..., LEFT_SHOULDER]
    right = straight["heatmaps"].numpy()[..., RIGHT_SHOULDER]
    assert np.unravel_index(left.argmax(), left.shape) == np.unravel_index(
        right[:, ::-1].argmax(), right.shape
    )


def test_ignore_mask_and_outside_image_are_ignored():
    image = np.zeros((80, 80, 3), np.uint8)
    person = np.zeros((K, 3), np.float32)
    person[:, :2] = [[5 + 2 * k, 10 + 3 * k] for k in range(K)]  # near the top-left corner
    person[:, 2] = 2
    ignore = np.zeros((80, 80), np.uint8)
    ignore[30:60, 20:40] = 1
    result = refine_data.PersonCropper(AugmentConfig.identity(SIZE), COCO.flip_index)(
        image, person[None], 0, ignore, seed=[0, 0]
    )
    mask = result["mask"].numpy()
    output_from_image = transforms.output_from_input(4) @ result["input_from_image"].numpy()
    x_out, y_out, _ = output_from_image @ [30.0, 45.0, 1.0]  # centre of the ignored block
    assert mask[int(round(y_out)), int(round(x_out))] == 0.0
    x_out, y_out, _ = output_from_image @ [-10.0, 20.0, 1.0]  # left of the image
    assert 0 <= x_out < SIZE // 4 and 0 <= y_out < SIZE // 4
    assert mask[int(round(y_out)), int(round(x_out))] == 0.0
    assert mask.max() == 1.0


def test_eager_equals_dataset_map():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    keypoints = np.stack([_person(rng, (60, 50), 25), _person(rng, (80, 40), 15)])
    ignore = np.zeros((96, 128), np.uint8)
    ignore[:20, :30] = 1
    cropper = refine_data.PersonCropper(
        AugmentConfig(input_size=SIZE), COCO.flip_index,
        refine_data.PersonCropConfig(ignore_other_people=True),
    )
    seed = tf.constant([7, 11], tf.int64)
    eager = cropper(image, keypoints, 1, ignore, seed)
    mapped = next(iter(
        tf.data.Dataset.from_tensors((image, keypoints, ignore)).map(
            lambda im, kp, ig: cropper(im, kp, 1, ig, seed)
        )
    ))
    for key in eager:
        np.testing.assert_allclose(mapped[key].numpy(), eager[key].numpy(), atol=1e-5,
                                   err_msg=key)
    # The sampled augmentation moved the crop away from the plain crop rule.
    plain = refine_data.person_crop_affine(refine_data.keypoint_box(keypoints[1]), SIZE)
    assert not np.allclose(eager["input_from_image"].numpy(), plain.numpy())


def _records() -> list[PoseRecord]:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    crowded = np.stack([
        _person(rng, (40, 40), 20),
        _person(rng, (60, 50), 20, num_labelled=2),  # too few labelled joints for min 3
        _person(rng, (30, 70), 10),
    ])
    return [
        _record(image, crowded, image_id=1),
        _record(image, _person(rng, (50, 50), 30)[None], image_id=2),
        _record(image, _person(rng, (50, 50), 30, num_labelled=1)[None], image_id=3),
    ]


def test_dataset_has_one_element_per_usable_person_and_the_batch_contract():
    records = _records()
    config = AugmentConfig(input_size=SIZE)
    crop_config = refine_data.PersonCropConfig(min_joints=3)
    assert refine_data.count_people(records, 3) == 3
    dataset = refine_data.build_person_dataset(
        records, training=False, batch_size=2, keypoint_info=COCO, augment_config=config,
        crop_config=crop_config, include_metadata=True,
    )
    batches = list(dataset)
    people = [(int(i), int(p)) for b in batches
              for i, p in zip(b["image_id"], b["person_index"], strict=True)]
    assert people == [(1, 0), (1, 2), (2, 0)]
    batch = batches[0]
    assert batch["image"].shape == (2, SIZE, SIZE, 3) and batch["image"].dtype == tf.float32
    assert batch["heatmaps"].shape == (2, SIZE // 4, SIZE // 4, K)
    assert batch["mask"].shape == (2, SIZE // 4, SIZE // 4)
    assert batch["image_id"].dtype == tf.int64 and batch["person_index"].dtype == tf.int32
    assert batch["keypoints"].shape == (2, 1, K, 3)
    # Without augmentation each crop is the plain crop rule around that person.
    for row, (image_id, person_index) in enumerate(people[:2]):
        record = records[image_id - 1]
        box = refine_data.keypoint_box(record.keypoints[person_index]).numpy()
        np.testing.assert_allclose(
            batch["input_from_image"][row].numpy(), _crop_numpy(box, SIZE), atol=1e-9
        )

    with pytest.raises(ValueError, match="labelled joints"):
        refine_data.build_person_dataset(
            records[2:], training=False, batch_size=1, keypoint_info=COCO,
            augment_config=config, crop_config=crop_config,
        )


def test_training_dataset_is_seeded_and_sharded():
    records = _records()

    def first_batches(seed, context=None, count=3):
        dataset = refine_data.build_person_dataset(
            records, training=True, batch_size=2, keypoint_info=COCO,
            augment_config=AugmentConfig(input_size=SIZE), seed=seed, deterministic=True,
            input_context=context,
        )
        return [
            {key: value.numpy() for key, value in batch.items()}
            for batch in dataset.take(count)
        ]

    first, again, other = first_batches(5), first_batches(5), first_batches(6)
    for left, right in zip(first, again, strict=True):
        for key in left:
            np.testing.assert_array_equal(left[key], right[key])
    assert any(not np.array_equal(a["image"], b["image"]) for a, b in zip(first, other,
                                                                           strict=True))
    context = tf.distribute.InputContext(
        num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2
    )
    sharded = first_batches(5, context, count=4)
    # Pipeline 1 of 2 holds the second image only (one person), per-replica batch 1.
    assert all(batch["image_id"].tolist() == [2] for batch in sharded)
