"""The input check shared by the NumPy decoders: detection maps and their tags, finite floats.

The pose decoder (``codec.decode``) and the instance decoder (``codec.instance_decode``) take
the same pair of arrays, detection maps (h, w, K) and tags (h, w, K, D) or (h, w, K) for D = 1,
and refuse the same mistakes with the same messages.
"""

from __future__ import annotations

import numpy as np


def validate_maps(
    maps: np.ndarray, tags: np.ndarray, *, name: str, axes: str
) -> tuple[np.ndarray, np.ndarray]:
    """Converts and checks one image's detection maps and tags.

    Args:
        maps: (h, w, K) detection maps, any float or int dtype.
        tags: (h, w, K, D) tags, or (h, w, K) for D = 1.
        name: what the maps are called in messages ('heatmaps', 'detection').
        axes: how their axes are called in messages ('h, w, K', 'H, W, C').

    Returns:
        maps: (h, w, K) C-contiguous float32.
        tags: (h, w, K, D) float32.

    Raises:
        ValueError: on a wrong rank, an empty axis, tags that do not match the maps, or a NaN
            or inf in either array.
    """
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    tags = np.asarray(tags, dtype=np.float32)
    if maps.ndim != 3 or min(maps.shape) < 1:
        raise ValueError(f"{name} must be ({axes}) with {axes} >= 1, got shape {maps.shape}.")
    if tags.ndim == 3:
        tags = tags[..., None]
    if tags.ndim != 4 or tags.shape[:3] != maps.shape or tags.shape[3] < 1:
        raise ValueError(
            f"tags must be ({axes}, D) or ({axes}) matching {name} {maps.shape}, "
            f"got shape {tags.shape}."
        )
    for array_name, array in ((name, maps), ("tags", tags)):
        if not np.isfinite(array).all():
            raise ValueError(f"{array_name} must be finite (found NaN or inf).")
    return maps, tags
