"""Exported model: latency of its signatures, and in-graph vs NumPy decoder agreement.

Usage:
    python benchmarks/export.py --workdir=runs/synthetic_pose \
        --annotations=runs/synthetic_pose/synthetic/annotations/person_keypoints_val.json \
        --images=runs/synthetic_pose/synthetic/val [--max_images=500] [--latency_size=512]

Exports the work dir's best checkpoint to a temporary directory (settings from its config),
then:
  * latency: ``serving_default`` and ``predict_poses`` per latency_size² image (median of
    --iterations calls after one warm-up call), on this machine's CPU;
  * agreement (the export's acceptance figure): for every image of the split, ``predict_poses``
    against ``ImagePoseEstimator`` with the NumPy decoder on the same network; a person agrees when
    the matched person (same rank by score) has the same joints present and every joint within
    1 px. Prints the share of persons that agree and of images with the same person count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--annotations", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--max_images", type=int, default=0)
    parser.add_argument("--latency_size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    from tqdm import tqdm

    from associative_embedding.core import run_dir
    from associative_embedding.core.keypoint_info import get_keypoint_info
    from associative_embedding.data import image_io, readers
    from associative_embedding.modeling import loading
    from associative_embedding.tasks.pose import estimator as predictor_lib
    from associative_embedding.tasks.pose import export as saved_model
    from associative_embedding.tasks.pose.config import decoder_options
    from associative_embedding.tasks.pose.image_estimator import ImagePoseEstimator

    model = loading.load_trained_model(args.workdir)
    config = run_dir.read_training_config(args.workdir)
    keypoint_info = get_keypoint_info(config.dataset.keypoints)
    export_config = saved_model.ExportConfig(
        input_size=int(config.codec.input_size), decoder=decoder_options(config.codec)
    )
    with tempfile.TemporaryDirectory() as export_dir:
        version_dir = saved_model.export_saved_model(
            model, keypoint_info, export_dir, config=export_config
        )
        loaded = tf.saved_model.load(version_dir)
        predict = loaded.signatures["predict_poses"]
        serve = loaded.signatures["serving_default"]

        size = args.latency_size
        image = tf.constant(np.random.default_rng(0).integers(0, 256, (size, size, 3), np.uint8))
        latency = {}
        for name, call in (
            ("serving_default", lambda: serve(images=image[None])),
            ("predict_poses", lambda: predict(image=image)),
        ):
            call()
            times = []
            for _ in range(args.iterations):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            latency[name] = statistics.median(times)
        print(f"latency per {size}x{size} image (predict_poses resizes to its input size "
              f"{export_config.input_size}):")
        for name, seconds in latency.items():
            print(f"  {name:16s} {1000 * seconds:8.1f} ms")

        split = readers.read_split(args.annotations, args.images)
        records = split.records[: args.max_images or None]
        estimator = ImagePoseEstimator(
            loading.load_predictor(version_dir),
            keypoint_info,
            predictor_lib.InferenceConfig(
                input_size=export_config.input_size, decoder=export_config.decoder
            ),
        )
        persons = agreeing = images_same_count = 0
        for record in tqdm(records, desc="agreement", unit="img"):
            pixels = image_io.decode_image(record.read_image_bytes(), source=record.file_name)
            expected = estimator(pixels).poses
            actual = predict(image=tf.constant(pixels))["poses"].numpy()
            images_same_count += int(len(actual) == len(expected))
            persons += len(expected)
            for index in range(min(len(actual), len(expected))):
                present = expected[index, :, 2] > 0
                same_joints = np.array_equal(actual[index, :, 2] > 0, present)
                distance = np.linalg.norm(actual[index, :, :2] - expected[index, :, :2], axis=-1)
                agreeing += int(same_joints and bool(np.all(distance[present] <= 1.0)))
    print(f"agreement on {len(records)} images: {agreeing}/{persons} persons "
          f"({100.0 * agreeing / max(persons, 1):.2f} %), same person count on "
          f"{images_same_count}/{len(records)} images")


if __name__ == "__main__":
    main()
