"""Decoder benchmark: per-image time of ``group_poses`` (refine on) on one CPU thread.

Maps are realistic synthetic network outputs at h = w = 128, K = 17 (COCO): people drawn from a
COCO skeleton template at random sizes, positions and in-plane rotations (they overlap);
Gaussian peaks (sigma 2) with scores 0.4-1.0 on a faint noise floor; ~15 % of the joints
missing (half with a weak sub-threshold peak, half with none); tags constant per person plus
per-joint and per-pixel noise near the person's joints and random elsewhere.

Baselines:

* the official parser + refine, stated as ~40 ms per image at 20 people on one thread of the
  project machine;
* a straightforward pure-Python port of the official algorithm, measured here on the same maps:
  max-pool NMS (scipy.ndimage.maximum_filter, like the official torch max-pool), top-30 per
  joint, the dict-based ``match_by_tag`` loop with ``scipy.optimize.linear_sum_assignment`` in
  place of munkres (so it is faster than the original), the per-joint adjust loop, and refine
  recomputing the full-map tag distance for all 17 joints of every person.

Run: ``python benchmarks/decoder.py`` (options: ``--people 1,5,10,20 --images 20 --repeats 3``).
The thread-count variables are set before NumPy is imported, so BLAS/OpenMP use one thread;
OpenCV's own thread pool is limited with ``cv2.setNumThreads(1)``.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from associative_embedding.codec import group_poses  # noqa: E402
from associative_embedding.core import keypoint_info  # noqa: E402

cv2.setNumThreads(1)

STATED_OFFICIAL_MS_AT_20 = 40.0
TARGET_MS_AT_20 = 5.0
MAP_SIZE = 128
NUM_JOINTS = 17
SIGMA = 2.0

# COCO joints of a standing person, unit height, origin at the hips' midpoint (x right, y down).
_TEMPLATE = np.array(
    [
        [0.00, -0.78], [-0.04, -0.81], [0.04, -0.81], [-0.09, -0.79], [0.09, -0.79],
        [-0.18, -0.60], [0.18, -0.60], [-0.24, -0.33], [0.24, -0.33], [-0.26, -0.08],
        [0.26, -0.08], [-0.11, 0.00], [0.11, 0.00], [-0.12, 0.33], [0.12, 0.33],
        [-0.12, 0.66], [0.12, 0.66],
    ]
)


# ----------------------------------------------------------------------------- synthetic maps


def synthetic_image(
    rng: np.random.Generator, num_people: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """One image's (heatmaps (128, 128, 17), tags (128, 128, 17, 1)) and its person count."""
    size = MAP_SIZE
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    heatmaps = np.abs(rng.normal(0.0, 0.01, (size, size, NUM_JOINTS))).astype(np.float32)
    tags = rng.normal(0.0, 3.0, (size, size, NUM_JOINTS, 1)).astype(np.float32)
    nearest = np.full((size, size, NUM_JOINTS), np.inf, np.float32)
    person_tags = 1.5 * rng.permutation(num_people) + rng.normal(0, 0.1, num_people)
    person_tags -= person_tags.mean()
    for person in range(num_people):
        height = rng.uniform(20, 70)
        angle = np.deg2rad(rng.uniform(-30, 30))
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        centre = rng.uniform(10, size - 10, 2)
        points = (_TEMPLATE * height) @ rotation.T + centre
        points += rng.normal(0, 0.03 * height, points.shape)
        missing = rng.random(NUM_JOINTS) < 0.15
        for joint, (x, y) in enumerate(points):
            if not (0 <= x <= size - 1 and 0 <= y <= size - 1):
                continue
            if missing[joint] and rng.random() < 0.5:
                continue  # no response at all
            amplitude = rng.uniform(0.02, 0.09) if missing[joint] else rng.uniform(0.4, 1.0)
            squared = (cols - x) ** 2 + (rows - y) ** 2
            np.maximum(
                heatmaps[:, :, joint],
                amplitude * np.exp(-squared / (2 * SIGMA**2)),
                out=heatmaps[:, :, joint],
            )
            joint_tag = person_tags[person] + rng.normal(0, 0.15)
            disk = (squared <= (3 * SIGMA) ** 2) & (squared < nearest[:, :, joint])
            nearest[:, :, joint] = np.where(disk, squared, nearest[:, :, joint])
            noisy = joint_tag + rng.normal(0, 0.1, int(disk.sum()))
            tags[disk, joint, 0] = noisy
    return heatmaps, tags, num_people


# ----------------------------------------------------------------------------- official port


def official_port(heatmaps: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """The official parser + refine, ported loop for loop (see the module docstring).

    Args:
        heatmaps: (K, H, W) and tags: (K, H, W, D), the official layouts.

    Returns:
        people (P, K, 3) (x, y, score) in corner coordinates after refine, and person scores.
    """
    num_joints, height, width = heatmaps.shape
    detection_threshold, tag_threshold, max_people = 0.1, 1.0, 30
    order = keypoint_info.COCO.grouping_order

    # NMS (3x3 max-pool, keep pixels equal to the pooled value) and top-30 per joint.
    pooled = ndimage.maximum_filter(heatmaps, size=(1, 3, 3), mode="constant", cval=-np.inf)
    suppressed = np.where(pooled == heatmaps, heatmaps, 0.0).reshape(num_joints, -1)
    top = np.argpartition(-suppressed, max_people, axis=1)[:, :max_people]
    top_values = np.take_along_axis(suppressed, top, axis=1)
    rank = np.argsort(-top_values, axis=1, kind="stable")
    indices = np.take_along_axis(top, rank, axis=1)
    values = np.take_along_axis(top_values, rank, axis=1)
    flat_tags = tags.reshape(num_joints, height * width, -1)
    tag_dim = flat_tags.shape[2]

    # match_by_tag: people in a dict keyed by the first tag value.
    default = np.zeros((num_joints, 3 + tag_dim))
    people: dict[float, np.ndarray] = {}
    people_tags: dict[float, list[np.ndarray]] = {}
    for step, joint in enumerate(order):
        joint_tags = flat_tags[joint, indices[joint]]
        rows = []
        for index, value, tag in zip(indices[joint], values[joint], joint_tags, strict=True):
            if value > detection_threshold:
                rows.append(np.concatenate([[index % width, index // width, value], tag]))
        if not rows:
            continue
        candidates = np.array(rows)
        if step == 0 or not people:
            for candidate in candidates:
                key = candidate[3]
                people.setdefault(key, default.copy())[joint] = candidate
                people_tags[key] = [candidate[3:]]
            continue
        keys = list(people)[:max_people]
        if len(keys) == max_people:
            continue  # the official parser ignores further joints once 30 people exist
        means = np.array([np.mean(people_tags[key], axis=0) for key in keys])
        distance = np.sqrt(((candidates[:, None, 3:] - means[None]) ** 2).mean(axis=2))
        cost = np.round(distance) * 100 - candidates[:, 2:3]
        if cost.shape[0] > cost.shape[1]:
            padding = np.full((cost.shape[0], cost.shape[0] - cost.shape[1]), 1e10)
            cost = np.concatenate([cost, padding], axis=1)
        for row, col in zip(*linear_sum_assignment(cost), strict=True):
            if col < len(keys) and distance[row, col] < tag_threshold:
                people[keys[col]][joint] = candidates[row]
                people_tags[keys[col]].append(candidates[row, 3:])
            else:
                key = candidates[row, 3]
                people.setdefault(key, default.copy())[joint] = candidates[row]
                people_tags[key] = [candidates[row, 3:]]
    grouped = np.array(list(people.values()), dtype=np.float32).reshape(-1, num_joints, 3 + tag_dim)

    # adjust: quarter pixel towards the larger neighbour, then +0.5.
    for person in grouped:
        for joint, keypoint in enumerate(person):
            if keypoint[2] > 0:
                x, y = int(keypoint[0]), int(keypoint[1])
                heat = heatmaps[joint]
                dx = 0.25 if heat[y, min(x + 1, width - 1)] > heat[y, max(x - 1, 0)] else -0.25
                dy = 0.25 if heat[min(y + 1, height - 1), x] > heat[max(y - 1, 0), x] else -0.25
                keypoint[0], keypoint[1] = x + dx + 0.5, y + dy + 0.5
    scores = [float(person[:, 2].mean()) for person in grouped]

    # refine: full-map tag distance for every joint of every person, missing or not.
    for person in grouped:
        present = [
            tags[joint, int(keypoint[1]), int(keypoint[0])]
            for joint, keypoint in enumerate(person) if keypoint[2] > 0
        ]
        mean_tag = np.mean(present, axis=0)
        found = []
        for joint in range(num_joints):
            heat = heatmaps[joint]
            distance = np.sqrt(((tags[joint] - mean_tag[None, None, :]) ** 2).sum(axis=2))
            y, x = np.unravel_index(np.argmax(heat - np.round(distance)), heat.shape)
            value = heat[y, x]
            # The official refine clamps the row neighbour with the joint count (its bug).
            dy = 0.25 if heat[min(y + 1, num_joints - 1), x] > heat[max(y - 1, 0), x] else -0.25
            dx = 0.25 if heat[y, min(x + 1, width - 1)] > heat[y, max(x - 1, 0)] else -0.25
            found.append((x + 0.5 + dx, y + 0.5 + dy, value))
        for joint, (x, y, value) in enumerate(found):
            if value > 0 and person[joint, 2] == 0:
                person[joint, :3] = (x, y, 1.0)
    return grouped[:, :, :3], scores


# ----------------------------------------------------------------------------- timing


def _time_per_image(decode, images, repeats: int) -> float:
    """Mean over images of the fastest of `repeats` runs, in milliseconds."""
    per_image = []
    for image in images:
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            decode(*image)
            best = min(best, time.perf_counter() - start)
        per_image.append(best)
    return 1e3 * float(np.mean(per_image))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", default="1,5,10,20", help="comma-separated people counts")
    parser.add_argument("--images", type=int, default=20, help="images per people count")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per image (min)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip_port", action="store_true", help="do not time the Python port")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    counts = [int(value) for value in args.people.split(",")]
    print(
        f"decoder benchmark: {MAP_SIZE}x{MAP_SIZE} maps, K={NUM_JOINTS}, refine on, one thread, "
        f"{args.images} images x {args.repeats} runs (fastest run per image, mean over images)"
    )
    header = (
        f"{'people':>6} {'ours ms':>8} {'no-refine':>9} {'port ms':>8} {'vs port':>8} "
        f"{'vs 40 ms':>8} {'ours people':>11} {'port people':>11}"
    )
    print(header)
    for num_people in counts:
        images = [synthetic_image(rng, num_people) for _ in range(args.images)]
        ours = [image[:2] for image in images]
        official_layout = [
            (
                np.ascontiguousarray(heatmaps.transpose(2, 0, 1)),
                np.ascontiguousarray(tags.transpose(2, 0, 1, 3)),
            )
            for heatmaps, tags in ours
        ]
        group_poses(*ours[0])  # warm-up (imports, caches)
        ours_ms = _time_per_image(group_poses, ours, args.repeats)
        no_refine_ms = _time_per_image(
            lambda h, t: group_poses(h, t, refine=False), ours, args.repeats
        )
        ours_people = np.mean([group_poses(h, t)[0].shape[0] for h, t in ours])
        if args.skip_port:
            port_ms, port_people = float("nan"), float("nan")
        else:
            port_ms = _time_per_image(official_port, official_layout, min(args.repeats, 2))
            port_people = np.mean([len(official_port(h, t)[1]) for h, t in official_layout[:5]])
        stated = STATED_OFFICIAL_MS_AT_20 / ours_ms
        stated_text = f"{stated:>7.1f}x" if num_people == 20 else f"{'-':>8}"
        print(
            f"{num_people:>6} {ours_ms:>8.2f} {no_refine_ms:>9.2f} {port_ms:>8.2f} "
            f"{port_ms / ours_ms:>7.1f}x {stated_text} {ours_people:>11.1f} {port_people:>11.1f}"
        )
        if num_people == 20:
            verdict = "meets" if ours_ms <= TARGET_MS_AT_20 else "misses"
            print(
                f"       20 people: {ours_ms:.2f} ms {verdict} the {TARGET_MS_AT_20:.0f} ms target "
                f"({stated:.1f}x vs the stated {STATED_OFFICIAL_MS_AT_20:.0f} ms official, "
                f"{port_ms / ours_ms:.1f}x vs the measured port; goal 8x, stretch 25x)"
            )
    print(
        "'people' columns: mean decoded people per image (the true count is the first column; "
        "synthetic tags of nearby people can legitimately merge)."
    )


if __name__ == "__main__":
    main()
