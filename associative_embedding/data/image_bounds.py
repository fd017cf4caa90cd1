"""Predicted joints kept inside their image, and images too elongated for the network.

A network input is the image with its long side resized to the input size and padded to a
multiple of 64 (``augment.eval_preprocess``). A very elongated image (say 10000 x 20 pixels)
becomes a strip less than one output pixel high: every heatmap row the decoder reads then spans
more than the whole short side, and the positions it maps back land outside the image. So:

* ``clip_poses_to_image``: every present joint (score > 0) is clipped to the centres of the
  image's border pixels, [0, W - 1] x [0, H - 1] in the pixel-centre convention of record.py.
  Its score is kept: the joint was detected, only its position is bounded. The evaluation
  (``predictor.PoseEstimator``) and the predict tool's results (``inference.writers``) both
  clip, so no reported joint is ever outside its image.
* ``elongation_problem``: a sentence naming the image when its aspect ratio is extreme, logged
  by the predict sources and the evaluation so that unreliable poses are explained.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_ASPECT_RATIO", "clip_poses_to_image", "elongation_problem"]

#: Long side / short side above which an image is reported as too elongated (at the default
#: 512 input and stride 4 its short side is then under 4 heatmap pixels).
MAX_ASPECT_RATIO = 32.0


def clip_poses_to_image(poses: np.ndarray, height: int, width: int) -> np.ndarray:
    """Clips the positions of the present joints into the image.

    Args:
        poses: (P, K, 3) (x, y, score) in image pixels (pixel-centre convention).
        height: the image height H.
        width: the image width W.

    Returns:
        (P, K, 3) float32 copy: joints with score > 0 have x in [0, W - 1] and y in [0, H - 1];
        absent joints (score <= 0) are unchanged.
    """
    clipped = np.array(poses, dtype=np.float32, copy=True)
    if clipped.size == 0:
        return clipped
    present = clipped[..., 2] > 0
    clipped[..., 0] = np.where(present, np.clip(clipped[..., 0], 0.0, max(width - 1, 0)),
                               clipped[..., 0])
    clipped[..., 1] = np.where(present, np.clip(clipped[..., 1], 0.0, max(height - 1, 0)),
                               clipped[..., 1])
    return clipped


def elongation_problem(
    name: str,
    height: int,
    width: int,
    *,
    input_size: int = 0,
    output_stride: int = 4,
    max_aspect_ratio: float = MAX_ASPECT_RATIO,
) -> str | None:
    """A sentence naming the image when it is too elongated for reliable poses, else None.

    Args:
        name: the image's file name (named in the sentence).
        height: its height.
        width: its width.
        input_size: the network input's long side; with it (> 0) the image is reported when
            its short side there is under one output pixel, without it when its aspect ratio
            exceeds `max_aspect_ratio`.
        output_stride: input pixels per heatmap pixel.
        max_aspect_ratio: the aspect ratio limit used without `input_size`.
    """
    long_side, short_side = max(height, width), min(height, width)
    if short_side <= 0:
        return f"{name}: the image is empty ({width}x{height} pixels)."
    ratio = long_side / short_side
    if input_size > 0:
        scaled = short_side * input_size / long_side
        if scaled >= output_stride:
            return None
        where = (f"at input size {input_size} its short side shrinks to {scaled:.2g} pixels, "
                 f"under one heatmap pixel ({output_stride} input pixels)")
    elif ratio <= max_aspect_ratio:
        return None
    else:
        where = f"more elongated than {max_aspect_ratio:g}:1"
    return (
        f"{name}: {width}x{height} image (aspect ratio {ratio:.0f}:1): {where}; it is padded "
        "as usual, but poses found in it are unreliable (joints are clipped into the image)."
    )
