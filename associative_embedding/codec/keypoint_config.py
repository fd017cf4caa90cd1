"""The `codec` config section of the keypoint tasks (multi-person pose, its refinement network,
tracking): one block that the target encoder and the grouping decoder both read.

    config.codec = ml_collections.ConfigDict(keypoint_codec_fields())
    group_poses(heatmaps, tags, **decoder_options(config.codec))

The defaults are the official pose-ae-train settings (paper Sec. 4.1). The section's values are
plain Python, so a work dir's config.json (a dict) works wherever a ConfigDict does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def keypoint_codec_fields() -> dict[str, Any]:
    """The codec fields with the official defaults.

    Returns:
        input_size: the network's input side (training crops and the scale-1 test input).
        output_stride: input pixels per heatmap pixel (4 official, 2 high-resolution heads).
        sigma: the targets' Gaussian sigma in output pixels; 0 = output size / 64 (2 at 128).
        subpixel_targets: Gaussians at the exact sub-pixel joint position (DARK) instead of the
            official integer pixel; pair with adjust='taylor'.
        max_people: people encoded per training image, and decoded per test image.
        detection_threshold, tag_threshold, refine, adjust: the grouping decoder's options
            (``codec.decode.group_poses``; adjust is official | symmetric | taylor | none).
    """
    return dict(
        input_size=512,
        output_stride=4,
        sigma=0.0,
        subpixel_targets=False,
        max_people=30,
        detection_threshold=0.1,
        tag_threshold=1.0,
        refine=True,
        adjust="official",
    )


def decoder_options(codec_config: Mapping[str, Any]) -> dict[str, Any]:
    """``codec.group_poses`` keyword arguments from a config's `codec` section (a ConfigDict or
    the dict of a work dir's config.json)."""
    adjust = codec_config.get("adjust", "official")
    return {
        "detection_threshold": codec_config["detection_threshold"],
        "tag_threshold": codec_config["tag_threshold"],
        "max_people": codec_config["max_people"],
        "refine": codec_config["refine"],
        "adjust": False if adjust == "none" else adjust,
    }
