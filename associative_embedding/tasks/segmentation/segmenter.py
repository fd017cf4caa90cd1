"""Image -> instances: the network at one or several test scales, then the instance decoder.

    segmenter = InstanceSegmenter(model_predictor(model), num_categories=3, tag_dim=1,
                                  input_size=128, scales=(1.0,), decoder={...})
    instances = segmenter(image)          # list[DecodedInstance], masks at image resolution

For each scale s the image's long side is resized to round(s * input_size) and padded to the
network's input multiple (`data/transforms.eval_resize_affine`); the last stack's detection and
tag maps (stride 4) are brought back to the image with two half-pixel-centre bilinear resizes
(output map -> padded input, crop the unpadded part, -> image size) and decoded there
(`codec.instance_decode.decode_instances`). Several scales give several proposal sets, merged
by mask-IoU NMS within each category (`merge_scales`, paper Sec. 4.2) rather than by averaging
maps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from associative_embedding.codec.instance_decode import (
    DecodedInstance,
    decode_instances,
    merge_scales,
    resize_instance_maps,
)
from associative_embedding.data import augment
from associative_embedding.modeling.loading import Predictor
from associative_embedding.modeling.outputs import split_outputs

# Floor of the detection weight of tags, so that pixels with no detection keep a finite tag.
_MIN_TAG_WEIGHT = 1e-3


class InstanceSegmenter:
    """Runs a segmentation network on images and decodes instance masks.

    Args:
        predictor: the network (`modeling.loading.Predictor`: images in [0, 1] ->
            last-stack outputs (B, h, w, C * (1 + D))).
        num_categories: C.
        tag_dim: D.
        input_size: long side of the network input at scale 1.
        output_stride: the network's output stride (4).
        scales: test scales (paper: 0.5, 1, 1.5).
        scale_nms_iou: IoU above which proposals of one category are merged across scales.
        decoder: `decode_instances` keyword arguments (`tasks.segmentation.config.
            instance_decoder_options`).
        detection_weighted_tags: upsample the tags weighted by their category's detection
            (normalised convolution: up(tag * d) / up(d), d clipped to [1e-3, 1]) instead of
            plainly. A plain bilinear upsampling mixes the background's arbitrary tags into
            the boundary pixels of every instance, whose tags then drift towards other
            instances' identifiers (or form spurious histogram peaks); weighting by the
            detection keeps each boundary pixel's tag that of its own object, and still
            splits two touching instances half-way.
    """

    def __init__(
        self,
        predictor: Predictor,
        num_categories: int,
        tag_dim: int = 1,
        *,
        input_size: int = 256,
        output_stride: int = 4,
        scales: Sequence[float] = (1.0,),
        scale_nms_iou: float = 0.5,
        decoder: Mapping[str, Any] | None = None,
        detection_weighted_tags: bool = True,
    ) -> None:
        if not scales or any(scale <= 0 for scale in scales):
            raise ValueError(f"scales must be positive, got {tuple(scales)}")
        self.predictor = predictor
        self.num_categories = int(num_categories)
        self.tag_dim = int(tag_dim)
        self.input_size = int(input_size)
        self.output_stride = int(output_stride)
        self.scales = tuple(float(scale) for scale in scales)
        self.scale_nms_iou = float(scale_nms_iou)
        self.decoder = dict(decoder or {})
        self.detection_weighted_tags = bool(detection_weighted_tags)

    def image_maps(
        self, image: np.ndarray, scale: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Detection (H, W, C) and tags (H, W, C, D) of one scale, at image resolution.

        Args:
            image: (H, W, 3) uint8 RGB (or float32 in [0, 1]).
            scale: test scale (the input's long side is round(scale * input_size)).
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"image must be (H, W, 3), got shape {image.shape}")
        height, width = image.shape[:2]
        input_size = max(self.predictor.input_multiple, int(round(scale * self.input_size)))
        prepared = augment.eval_preprocess(
            tf.convert_to_tensor(image), input_size, self.predictor.input_multiple
        )
        outputs = self.predictor(prepared["image"][None])[0]
        detection, tags = split_outputs(outputs, self.num_categories, self.tag_dim)
        detection, tags = np.asarray(detection), np.asarray(tags)
        padded_h, padded_w = (int(v) for v in prepared["padded_size"].numpy())
        resized_h, resized_w = (int(v) for v in prepared["resized_size"].numpy())
        # Output map -> padded input (x_in = stride * (x_out + 0.5) - 0.5, a plain resize),
        # crop the padding, then the resized image -> the original image (again a resize).
        weight = np.clip(detection, _MIN_TAG_WEIGHT, 1.0)[..., None]  # (h, w, C, 1)
        if self.detection_weighted_tags:
            tags = tags * weight
        detection, tags = resize_instance_maps(detection, tags, (padded_h, padded_w))
        detection, tags = detection[:resized_h, :resized_w], tags[:resized_h, :resized_w]
        detection, tags = resize_instance_maps(detection, tags, (height, width))
        if self.detection_weighted_tags:
            _, weight = resize_instance_maps(weight[..., 0], weight, (padded_h, padded_w))
            _, weight = resize_instance_maps(
                weight[:resized_h, :resized_w, :, 0], weight[:resized_h, :resized_w],
                (height, width),
            )
            tags = tags / np.maximum(weight, _MIN_TAG_WEIGHT)
        return detection, tags

    def __call__(self, image: np.ndarray) -> list[DecodedInstance]:
        """The instances of one image, best first (masks (H, W) bool at image resolution)."""
        per_scale = [
            decode_instances(*self.image_maps(image, scale), **self.decoder)
            for scale in self.scales
        ]
        if len(per_scale) == 1:
            return per_scale[0]
        return merge_scales(per_scale, iou_threshold=self.scale_nms_iou)
