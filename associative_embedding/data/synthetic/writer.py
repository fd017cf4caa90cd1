"""The generation loop both synthetic datasets share: one seeded generator per image, the
split's argument checks, its image folder, the image files and the progress bar; and
``generate_missing_splits``, which a trainer calls to make the train and val splits it lacks.

Each image's randomness comes from its own generator, seeded by ``(seed, crc32(split),
image_index)``: the output depends only on the arguments, and any image can be regenerated
alone.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np
from absl import logging


@dataclasses.dataclass(frozen=True)
class SyntheticSplit:
    """Default size and seed of one split."""

    num_images: int
    seed: int



def image_rng(seed: int, split: str, image_index: int) -> np.random.Generator:
    """The generator of one image: independent of every other image and split."""
    if seed < 0 or image_index < 0:
        raise ValueError(f"seed and image_index must be >= 0, got {seed}, {image_index}.")
    return np.random.default_rng([seed, zlib.crc32(split.encode("utf-8")), image_index])


class RenderedImage(Protocol):
    """What a generator's renderer returns: at least the (H, W, 3) uint8 RGB image."""

    image: np.ndarray


SceneT = TypeVar("SceneT", bound=RenderedImage)


@dataclasses.dataclass(frozen=True)
class ImageEncoding:
    """How a dataset's images are written.

    Attributes:
        extension: the file name suffix, dot included ('.jpg', '.png'); also picks the codec.
        name: the format's name in error messages ('JPEG', 'PNG').
        parameters: ``cv2.imencode`` parameters, e.g. the JPEG quality.
    """

    extension: str
    name: str
    parameters: tuple[int, ...] = ()


class SplitWriter:
    """Writes the images of one split: ``out_dir/<split>/<image_id:012d><extension>``.

    The constructor checks the arguments and creates the image folder; ``write_images`` renders
    and writes image after image and hands each scene back, so the caller builds its
    annotations while the images are written. Image ids are 1..num_images.

    Attributes:
        split: the split name.
        num_images: images in the split.
        seed: the base seed.
        image_size: side of the square images in pixels.
        image_dir: the folder the images go to.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        split: str,
        *,
        num_images: int,
        seed: int,
        image_size: int,
    ) -> None:
        """Checks the arguments and creates ``out_dir/<split>``.

        Args:
            out_dir: dataset root.
            split: split name, e.g. 'train' or 'val' (also mixed into the random seed).
            num_images: number of images (>= 1).
            seed: non-negative base seed.
            image_size: side of the square images in pixels (>= 32).

        Raises:
            ValueError: naming the first bad argument.
        """
        if not split or any(character in split for character in "/\\"):
            raise ValueError(f"split must be a plain name, got {split!r}.")
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}.")
        if image_size < 32:
            raise ValueError(f"image_size must be >= 32, got {image_size}.")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}.")
        self.split = split
        self.num_images = num_images
        self.seed = seed
        self.image_size = image_size
        self.image_dir = pathlib.Path(out_dir) / split
        self.image_dir.mkdir(parents=True, exist_ok=True)

    def write_images(
        self,
        render: Callable[[np.random.Generator], SceneT],
        encoding: ImageEncoding,
        *,
        progress_label: str | None = None,
    ) -> Iterator[tuple[int, pathlib.Path, SceneT]]:
        """Renders and writes the split's images in order.

        Args:
            render: draws one scene from the image's generator (``image_rng``).
            encoding: the image file format.
            progress_label: when given, a tqdm progress bar named '<label> <split>'.

        Yields:
            (image id, image path, scene) after the image is written.

        Raises:
            RuntimeError: when OpenCV fails to encode an image.
        """
        indices: Iterable[int] = range(self.num_images)
        if progress_label is not None:
            from tqdm import tqdm

            indices = tqdm(indices, desc=f"{progress_label} {self.split}", unit="img")
        for index in indices:
            scene = render(image_rng(self.seed, self.split, index))
            image_id = index + 1
            path = self.image_dir / f"{image_id:012d}{encoding.extension}"
            ok, encoded = cv2.imencode(
                encoding.extension, scene.image[..., ::-1], list(encoding.parameters)
            )
            if not ok:
                raise RuntimeError(
                    f"{encoding.name} encoding failed for synthetic image {image_id}."
                )
            path.write_bytes(encoded.tobytes())
            yield image_id, path, scene


def generate_missing_splits(
    root: str | os.PathLike,
    *,
    generate: Callable[..., Any],
    annotation_path: Callable[[str | os.PathLike, str], pathlib.Path],
    num_train: int,
    num_val: int,
    seed: int,
    image_size: int,
    description: str,
) -> dict[str, str]:
    """Generates the 'train' and 'val' splits whose annotation file is missing.

    A split that exists is kept as it is, so a work dir generates its data once. The val split
    is seeded with ``seed + 1``, so it never repeats a train image.

    Args:
        root: the dataset folder.
        generate: the generator, called as ``generate(root, split=, num_images=, seed=,
            image_size=, show_progress=True)`` (``generate_synthetic_dataset``,
            ``generate_synthetic_shapes``).
        annotation_path: the generator's ``(root, split) -> annotation file``.
        num_train, num_val: images in each split.
        seed: the train split's seed.
        image_size: side of the square images in pixels.
        description: what is generated, for the log ('synthetic', 'synthetic shapes').

    Returns:
        {'train_annotations', 'train_images', 'val_annotations', 'val_images'}: the paths.
    """
    paths = {}
    for split, num_images, split_seed in (("train", num_train, seed), ("val", num_val, seed + 1)):
        annotation = annotation_path(root, split)
        if not os.path.exists(annotation):
            logging.info(
                "generating %d %s %s images into %s", num_images, description, split, root
            )
            generate(
                root, split=split, num_images=num_images, seed=split_seed,
                image_size=image_size, show_progress=True,
            )
        paths[f"{split}_annotations"] = os.fspath(annotation)
        paths[f"{split}_images"] = os.path.join(root, split)
    return paths
