"""The TensorBoard heatmap and tag pictures of the periodic evaluation."""

from __future__ import annotations

import numpy as np

from associative_embedding.training.evaluation_hook import map_pictures

STRIDE, SIZE, JOINTS = 4, 16, 3


def _two_people() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Person A (tag -2) at map pixels (3, 3) and (3, 5), person B (tag 5) at (12, 10)."""
    heatmaps = np.zeros((SIZE, SIZE, JOINTS), np.float32)
    tags = np.zeros((SIZE, SIZE, JOINTS, 2), np.float32)
    for (row, col), joint, tag in (((3, 3), 0, -2.0), ((3, 5), 1, -2.0), ((12, 10), 2, 5.0)):
        heatmaps[row, col, joint] = 1.0
        tags[..., joint, 0] = np.where(heatmaps[..., joint] > 0, tag, 0.0)
    tags[..., 1] = 100.0  # the second tag dimension is not shown
    image = np.full((SIZE * STRIDE, SIZE * STRIDE, 3), 0.5, np.float32)
    return image, heatmaps, tags


def _block(picture: np.ndarray, row: int, col: int) -> np.ndarray:
    """The input pixels of map pixel (row, col): one colour, by nearest upsampling."""
    block = picture[row * STRIDE:(row + 1) * STRIDE, col * STRIDE:(col + 1) * STRIDE]
    assert np.all(block == block[0, 0])
    return block[0, 0].astype(np.int32)


def test_heatmap_picture_shows_the_strongest_joint():
    image, heatmaps, tags = _two_people()
    heatmap_picture, tag_picture = map_pictures(image, heatmaps, tags)
    assert heatmap_picture.shape == tag_picture.shape == image.shape
    assert heatmap_picture.dtype == tag_picture.dtype == np.uint8
    peak, background = _block(heatmap_picture, 3, 3), _block(heatmap_picture, 0, 0)
    # "jet": dark red (128, 0, 0) at 1, dark blue at 0, blended with the grey image.
    assert peak[0] > peak[2] + 50 and background[2] > background[0] + 50
    np.testing.assert_array_equal(_block(heatmap_picture, 12, 10), peak)


def test_tag_picture_colours_people_apart_and_dims_the_background():
    image, heatmaps, tags = _two_people()
    _, tag_picture = map_pictures(image, heatmaps, tags)
    first_a, second_a, b = (_block(tag_picture, *pixel) for pixel in ((3, 3), (3, 5), (12, 10)))
    background = _block(tag_picture, 0, 0)
    np.testing.assert_array_equal(first_a, second_a)  # one person, one colour
    assert np.abs(first_a - b).max() > 100  # two people, far apart tags: different colours
    assert background.max() < min(first_a.max(), b.max())
    # The normalisation is relative: shifting every tag changes nothing.
    _, shifted = map_pictures(image, heatmaps, tags + 50.0)
    np.testing.assert_array_equal(shifted, tag_picture)


def test_pictures_without_detections_are_defined():
    image, heatmaps, tags = _two_people()
    heatmap_picture, tag_picture = map_pictures(image, heatmaps * 0, tags)
    assert np.all(np.isfinite(heatmap_picture)) and tag_picture.shape == image.shape
