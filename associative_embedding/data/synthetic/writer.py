"""The generation loop both synthetic datasets share: one seeded generator per image, the
split's argument checks, its image folder, the image files and the progress bar; and
``generate_missing_splits``, which a trainer calls to make the train and val splits it lacks.

Each image's randomness comes from its own generator, seeded by ``(seed, crc32(split),
image_index)``: the output depends only on the arguments, and any image can be regenerated
alone.

Because the images are independent, ``map_in_order`` spreads them over worker processes
(``workers``): each worker renders, encodes and writes its images and hands back only a small
summary (the annotations), in image order, so the files are byte-identical to a serial run.
The workers are *spawned*, never forked: a trainer calls this with TensorFlow loaded, and a
fork copies TensorFlow's thread pools in whatever state their locks happen to be.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import pathlib
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

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
SummaryT = TypeVar("SummaryT")
ResultT = TypeVar("ResultT")

#: The most worker processes ``workers=0`` starts: beyond this the parent, which gathers the
#: summaries in order, and the disk become the limit.
MAX_AUTO_WORKERS = 16

#: ``workers=0`` gives each worker at least this many items: a spawned worker spends about a
#: second importing NumPy, OpenCV and this package, which a hundred 256-pixel images repay.
MIN_ITEMS_PER_WORKER = 100


class SyntheticImageError(RuntimeError):
    """An image (or clip) of a synthetic split failed; the message names the split and its id."""


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_workers(
    workers: int, num_items: int, *, min_items_per_worker: int = MIN_ITEMS_PER_WORKER
) -> int:
    """The worker processes to use for ``num_items`` independent items.

    Args:
        workers: 0 = one per available CPU, at most ``MAX_AUTO_WORKERS`` and no more than
            leaves each worker ``min_items_per_worker`` items (so a small split stays in this
            process); 1 = serial, in this process; n > 1 = n processes (at most one per item).
        num_items: the items to make.
        min_items_per_worker: for ``workers=0``: the fewest items that repay a worker.

    Returns:
        The number of processes, >= 1 (1 means: in this process, no worker).

    Raises:
        ValueError: for negative ``workers``.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = all CPUs), got {workers}.")
    if workers == 0:
        workers = min(available_cpus(), MAX_AUTO_WORKERS, num_items // min_items_per_worker)
    return max(1, min(workers, num_items))


def _start_worker() -> None:
    # Each worker is one of as many processes as there are CPUs: OpenCV's own thread pool
    # would only oversubscribe them.
    cv2.setNumThreads(1)


def map_in_order(
    function: Callable[[int], ResultT],
    num_items: int,
    *,
    workers: int = 1,
    min_items_per_worker: int = MIN_ITEMS_PER_WORKER,
) -> Iterator[ResultT]:
    """``function(0), function(1), ...`` in order, serially or in spawned worker processes.

    Args:
        function: makes item i; with workers it must be picklable (a top-level function, a
            ``functools.partial`` of one or an instance of a top-level class, not a lambda)
            and so must what it returns.
        num_items: the number of items.
        workers, min_items_per_worker: see ``resolve_workers``.

    Yields:
        The items' results in item order, each as soon as it and all before it are done.

    Raises:
        Whatever ``function`` raises, for the first failing item in order; the items not yet
        started are cancelled.
    """
    workers = resolve_workers(workers, num_items, min_items_per_worker=min_items_per_worker)
    if workers == 1:
        yield from map(function, range(num_items))
        return
    # Several chunks per worker balance the load; small ones keep the progress bar moving.
    chunksize = max(1, min(16, num_items // (4 * workers)))
    executor = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
    )
    try:
        yield from executor.map(function, range(num_items), chunksize=chunksize)
    finally:
        # On an error (or a caller that stops early) the queued chunks are dropped, not made.
        executor.shutdown(wait=True, cancel_futures=True)


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
        summarize: Callable[[SceneT, int], SummaryT],
        progress_label: str | None = None,
        workers: int = 1,
    ) -> Iterator[tuple[int, pathlib.Path, SummaryT]]:
        """Renders and writes the split's images; yields them in order.

        With ``workers`` other than 1 the images are made in spawned processes, which render,
        encode and write them and send back only ``summarize``'s result; the files and the
        order are the same as in the serial loop.

        Args:
            render: draws one scene from the image's generator (``image_rng``). Picklable
                unless ``workers`` is 1 (``functools.partial`` of a top-level function).
            encoding: the image file format.
            summarize: ``(scene, image_id) -> what the caller needs`` (e.g. the image's
                annotations), called after the image is written; keep its result small: it
                is what a worker sends back. Picklable unless ``workers`` is 1.
            progress_label: when given, a tqdm progress bar named '<label> <split>', advanced
                per image.
            workers: worker processes; see ``resolve_workers`` (0 = all CPUs, 1 = serial in
                this process).

        Yields:
            (image id, image path, summary) after the image is written.

        Raises:
            SyntheticImageError: naming the first image (in order) whose rendering, encoding,
                writing or summary failed.
        """
        job = _ImageJob(render, summarize, encoding, self.seed, self.split, self.image_dir)
        summaries = map_in_order(job, self.num_images, workers=workers)
        if progress_label is not None:
            from tqdm import tqdm

            summaries = tqdm(
                summaries, total=self.num_images, desc=f"{progress_label} {self.split}",
                unit="img",
            )
        for index, summary in enumerate(summaries):
            yield index + 1, job.path(index + 1), summary


@dataclasses.dataclass(frozen=True)
class _ImageJob(Generic[SceneT, SummaryT]):
    """Makes one image of a split; an instance is what a worker process receives."""

    render: Callable[[np.random.Generator], SceneT]
    summarize: Callable[[SceneT, int], SummaryT]
    encoding: ImageEncoding
    seed: int
    split: str
    image_dir: pathlib.Path

    def path(self, image_id: int) -> pathlib.Path:
        """The file of an image."""
        return self.image_dir / f"{image_id:012d}{self.encoding.extension}"

    def __call__(self, index: int) -> SummaryT:
        """Renders, encodes and writes image ``index`` and returns its summary."""
        image_id = index + 1
        try:
            scene = self.render(image_rng(self.seed, self.split, index))
            ok, encoded = cv2.imencode(
                self.encoding.extension, scene.image[..., ::-1], list(self.encoding.parameters)
            )
            if not ok:
                raise SyntheticImageError(
                    f"{self.encoding.name} encoding failed for synthetic {self.split} image "
                    f"{image_id}."
                )
            self.path(image_id).write_bytes(encoded.tobytes())
            return self.summarize(scene, image_id)
        except SyntheticImageError:
            raise
        except Exception as error:
            # From a worker only this message and the formatted traceback come back, so the
            # message itself says which image failed.
            raise SyntheticImageError(
                f"synthetic {self.split} image {image_id} failed: "
                f"{type(error).__name__}: {error}"
            ) from error


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
    workers: int = 0,
) -> dict[str, str]:
    """Generates the 'train' and 'val' splits whose annotation file is missing.

    A split that exists is kept as it is, so a work dir generates its data once. The val split
    is seeded with ``seed + 1``, so it never repeats a train image.

    Args:
        root: the dataset folder.
        generate: the generator, called as ``generate(root, split=, num_images=, seed=,
            image_size=, show_progress=True, workers=)`` (``generate_synthetic_dataset``,
            ``generate_synthetic_shapes``).
        annotation_path: the generator's ``(root, split) -> annotation file``.
        num_train, num_val: images in each split.
        seed: the train split's seed.
        image_size: side of the square images in pixels.
        description: what is generated, for the log ('synthetic', 'synthetic shapes').
        workers: worker processes (``resolve_workers``); by default one per CPU, so a
            trainer's data is made as fast as the machine allows.

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
                image_size=image_size, show_progress=True, workers=workers,
            )
        paths[f"{split}_annotations"] = os.fspath(annotation)
        paths[f"{split}_images"] = os.path.join(root, split)
    return paths
