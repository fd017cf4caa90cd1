"""Throughput of the full training input pipeline (read, decode, augment, encode, batch).

Measures images/s of ``associative_embedding.data.pipeline.build_dataset`` (training mode,
official augmentation ranges, 512 input / 128 output by default) with the tf.data private
threadpool and the intra-op parallelism limited to N threads, for each N in --threads, and
reports images/s per thread (≈ per CPU core when the machine is otherwise idle).

Data: the real COCO sample in ../shared/data/coco_mini_train2017 (read with the project's COCO
reader), or with --synthetic N a freshly generated synthetic set of N images (data/synthetic.py,
same reader). With --stages it also times cumulative prefixes of the per-example work on one
thread (read+decode, +augment, +encode) to show where the time goes.

Usage:
    python benchmarks/input_pipeline.py                         # coco_mini, 1 and 2 threads
    python benchmarks/input_pipeline.py --synthetic 64 --stages
    python benchmarks/input_pipeline.py --threads 1,2,4 --batches 40 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

# Runnable as `python benchmarks/input_pipeline.py` from a source checkout without installing.
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from associative_embedding.codec.encode import KeypointEncoder  # noqa: E402
from associative_embedding.core.keypoint_info import COCO  # noqa: E402
from associative_embedding.data import pipeline, tfrecord  # noqa: E402
from associative_embedding.data.augment import AugmentConfig, Augmenter  # noqa: E402
from associative_embedding.data.coco import read_coco_keypoints  # noqa: E402

DEFAULT_COCO = _REPO_ROOT.parent / "shared" / "data" / "coco_mini_train2017"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coco-dir", default=str(DEFAULT_COCO),
                        help="COCO-format folder with person_keypoints_train2017.json + images/")
    parser.add_argument("--synthetic", type=int, default=0,
                        help="generate N synthetic images instead of reading --coco-dir")
    parser.add_argument("--synthetic-size", type=int, default=256, help="synthetic image side")
    parser.add_argument("--threads", default="1,2", help="comma-separated threadpool sizes")
    parser.add_argument("--input-size", type=int, default=512)
    parser.add_argument("--color-space", default="hsv", choices=("hsv", "yiq"),
                        help="colour-jitter implementation (AugmentConfig.color_space)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per setting")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches per setting")
    parser.add_argument("--stages", action="store_true",
                        help="also time read+decode / +augment / +encode on one thread")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    return parser.parse_args(argv)


def load_records(args: argparse.Namespace, workdir: str) -> tuple[list, str]:
    if args.synthetic > 0:
        from associative_embedding.data.synthetic import generate_synthetic_dataset

        json_path = generate_synthetic_dataset(
            workdir, split="train", num_images=args.synthetic, seed=0,
            image_size=args.synthetic_size, show_progress=True,
        )
        records, _ = read_coco_keypoints(json_path, pathlib.Path(workdir) / "train")
        return records, f"synthetic ({args.synthetic} images of {args.synthetic_size}^2)"
    coco_dir = pathlib.Path(args.coco_dir)
    records, _ = read_coco_keypoints(
        coco_dir / "person_keypoints_train2017.json", coco_dir / "images"
    )
    return records, f"{coco_dir.name} ({len(records)} images with people)"


def time_dataset(dataset: tf.data.Dataset, warmup: int, batches: int, batch_size: int) -> float:
    """Images per second over `batches` batches after `warmup` untimed ones."""
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
        # Touch the result so that the batch is really materialised.
        _ = batch["image"].shape if isinstance(batch, dict) else batch[0].shape
    elapsed = time.perf_counter() - start
    return batches * batch_size / elapsed


def full_pipeline_rate(records: list, args: argparse.Namespace, threads: int) -> float:
    dataset = pipeline.build_dataset(
        records,
        training=True,
        batch_size=args.batch_size,
        keypoint_info=COCO,
        augment_config=AugmentConfig(input_size=args.input_size, color_space=args.color_space),
        seed=0,
        deterministic=False,
        threadpool_size=threads,
    )
    return time_dataset(dataset, args.warmup, args.batches, args.batch_size)


def stage_rates(records: list, args: argparse.Namespace) -> dict[str, float]:
    """Cumulative prefixes of the per-example work, one thread, batched like the real thing."""
    config = AugmentConfig(input_size=args.input_size, color_space=args.color_space)
    augmenter = Augmenter(config, COCO.flip_index)
    encoder = KeypointEncoder(config.output_size, COCO.num_joints)

    def decode(index, example):
        image, mask = pipeline.decode_raw_example(example)
        return {"image": tf.image.resize_with_crop_or_pad(image, 64, 64), "mask": mask[:8, :8]}

    def decode_augment(index, example):
        image, mask = pipeline.decode_raw_example(example)
        out = augmenter(image, example["keypoints"], mask, tf.stack([index, index]))
        return {"image": out["image"], "mask": out["ignore_mask"]}

    def decode_augment_encode(index, example):
        image, mask = pipeline.decode_raw_example(example)
        out = augmenter(image, example["keypoints"], mask, tf.stack([index, index]))
        targets = encoder.encode(out["keypoints"], out["ignore_mask"])
        return {"image": out["image"], "heatmaps": targets["heatmaps"]}

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    results = {}
    raw = tfrecord.records_to_dataset(records, num_joints=COCO.num_joints).repeat().enumerate()
    for name, function in (
        ("read+decode", decode),
        ("+augment", decode_augment),
        ("+encode (full example)", decode_augment_encode),
    ):
        dataset = (
            raw.map(function, num_parallel_calls=1)
            .batch(args.batch_size)
            .prefetch(1)
            .with_options(options)
        )
        results[name] = time_dataset(dataset, args.warmup, args.batches, args.batch_size)
    return results


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    thread_counts = [int(value) for value in args.threads.split(",") if value]
    with tempfile.TemporaryDirectory() as workdir:
        records, description = load_records(args, workdir)
        print(f"data: {description}; input {args.input_size}, output "
              f"{args.input_size // 4}, batch {args.batch_size}, {args.batches} timed batches, "
              f"colour jitter in {args.color_space}")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
              f"visible, load average {os.getloadavg()[0]:.2f} (shared machines read low)")
        results = {"data": description, "input_size": args.input_size,
                   "batch_size": args.batch_size, "color_space": args.color_space,
                   "cpu_count": os.cpu_count(),
                   "load_average_1min": os.getloadavg()[0], "threads": {}}
        for threads in thread_counts:
            rate = full_pipeline_rate(records, args, threads)
            results["threads"][threads] = {"images_per_s": rate, "per_thread": rate / threads}
            print(f"threads={threads}: {rate:7.1f} images/s = {rate / threads:6.1f} per thread")
        if args.stages:
            results["stages_one_thread"] = stage_rates(records, args)
            for name, rate in results["stages_one_thread"].items():
                print(f"  one thread, {name:24s} {rate:7.1f} images/s "
                      f"({1000.0 / rate:5.1f} ms/image)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    main()
