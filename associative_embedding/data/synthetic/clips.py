"""Synthetic video clips of walking people, written as a PoseTrack 2018 dataset with track ids.

The people, their looks and their rendering are those of the synthetic people images
(``figure``, ``pose``, ``appearance``, ``background``, ``render``; annotation fields as
``people.scene_annotations``); this module moves them through time. Per clip (all randomness
from one generator, ``writer.image_rng(seed, split, clip_index)``, so any clip can be
regenerated alone):

* **Camera**: static; one background per clip, fresh sensor noise (and blur draw) per frame.
* **People** (``people_count_weights``, at least two by default): each walks horizontally with
  a gait (legs and arms swing in antiphase, elbows and knees flex with the phase; the phase
  advances with the distance walked) seen roughly from the side it walks towards. Speed is
  smooth: each frame's velocity is the last one plus a small relative jitter
  (``speed_jitter``), with a slow vertical drift. People start anywhere from 30 % of the width
  left of the image to 30 % right of it, so they enter and leave the frame.
* **Crossings**: with probability ``crossing_probability`` two people of similar size and
  height walk towards each other and pass at a random frame in the middle half of the clip
  (positions are shifted so that their pelvises meet half a frame after that frame), so the
  nearer one occludes the other. Other people cross by chance.
* **Depth**: people are drawn far to near by their height in pixels (larger = nearer), so
  crossing people occlude each other; a joint covered by a person drawn later is v = 1.
* **Labels** per frame, as for the synthetic images: a joint outside the image or hidden by
  the own head is unlabelled; a person is annotated in a frame when its mask box is at least
  ``label_min_height_fraction`` of the image tall and it has at least
  ``min_labelled_joints`` labelled joints; otherwise, if any of it is visible, it is written
  without keypoints (masked in training, like PoseTrack's unannotated people). A person
  entirely outside the image is absent from the frame.

Layout (PoseTrack 2018): ``out_dir/images/<split>/<vid_id>/<frame:06d>.jpg`` and
``out_dir/annotations/<split>/<vid_id>.json``, one file per clip, with ``vid_id`` the clip
index as 6 digits. Images: ``id`` = ``frame_id`` = 1 vid_id frame(4 digits), ``vid_id``,
``file_name`` relative to ``out_dir``, ``nframes``, ``is_labeled`` true,
``ignore_regions_x/y`` empty. Annotations: the synthetic people's COCO fields plus
``track_id`` (0, 1, ... per clip, constant over the clip) and ``bbox_head`` (x, y, w, h of
the drawn head ellipse); ``id`` = image id * 100 + the person's index in the frame.
`data.posetrack.read_posetrack_videos(out_dir / 'annotations' / split, out_dir)` reads it.

`clip_statistics` measures a written split, including the share of clips with a crossing:
two tracks **cross** when, at two frames t < t' in which both are annotated and their boxes'
vertical extents overlap, the centre of one box is strictly left of the other's at t and
strictly right of it at t'.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
from collections.abc import Iterable

import cv2
import numpy as np

from associative_embedding.data.synthetic.appearance import Appearance, sample_appearance
from associative_embedding.data.synthetic.background import finish_image, render_background
from associative_embedding.data.synthetic.config import DEFAULT_IMAGE_SIZE, SyntheticConfig
from associative_embedding.data.synthetic.figure import Figure, build_figure
from associative_embedding.data.synthetic.people import coco_person_category, scene_annotations
from associative_embedding.data.synthetic.pose import NUM_JOINTS, LimbAngles, Pose
from associative_embedding.data.synthetic.render import draw_figure, draw_person_mask
from associative_embedding.data.synthetic.scene import SyntheticPerson, SyntheticScene
from associative_embedding.data.synthetic.writer import (
    SyntheticImageError,
    image_rng,
    map_in_order,
)


@dataclasses.dataclass(frozen=True)
class ClipConfig:
    """Distribution of synthetic clips (sizes relative to the image side).

    Attributes:
        num_frames: frames per clip.
        people_count_weights: relative probability of 0, 1, 2, ... people per clip.
        min_height_fraction: smallest standing height, fraction of the image side.
        max_height_fraction: largest standing height.
        speed_range: (low, high) walking speed, fraction of the image width per frame.
        speed_jitter: std of the per-frame change of the speed, relative to the speed.
        vertical_drift: std of the per-frame vertical velocity change, fraction of the side.
        crossing_probability: probability that a clip has an arranged crossing of two people.
        label_min_height_fraction: a person whose mask box is less tall (fraction of the side)
            is written without keypoints in that frame.
        min_labelled_joints: a person with fewer labelled joints in a frame is written without
            keypoints there.
        scene: background, noise, blur and JPEG settings (``SyntheticConfig``; its people
            settings are not used).
    """

    num_frames: int = 16
    people_count_weights: tuple[float, ...] = (0.0, 0.0, 0.4, 0.35, 0.25)
    min_height_fraction: float = 0.4
    max_height_fraction: float = 0.75
    speed_range: tuple[float, float] = (0.015, 0.045)
    speed_jitter: float = 0.08
    vertical_drift: float = 0.002
    crossing_probability: float = 0.6
    label_min_height_fraction: float = 0.3125
    min_labelled_joints: int = 3
    scene: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}.")
        weights = np.asarray(self.people_count_weights, np.float64)
        if weights.ndim != 1 or weights.size == 0 or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(
                "people_count_weights must be non-negative with a positive sum, got "
                f"{self.people_count_weights}."
            )
        if not 0 < self.min_height_fraction <= self.max_height_fraction:
            raise ValueError("need 0 < min_height_fraction <= max_height_fraction.")
        low, high = self.speed_range
        if not 0 <= low <= high:
            raise ValueError(f"speed_range must be 0 <= low <= high, got {self.speed_range}.")
        if not 0.0 <= self.crossing_probability <= 1.0:
            raise ValueError("crossing_probability must lie in [0, 1].")
        if self.speed_jitter < 0 or self.vertical_drift < 0:
            raise ValueError("speed_jitter and vertical_drift must be >= 0.")
        if not 0 <= self.min_labelled_joints <= NUM_JOINTS:
            raise ValueError(f"min_labelled_joints must lie in [0, {NUM_JOINTS}].")


@dataclasses.dataclass
class _Walker:
    """One person of a clip: fixed body and looks, a trajectory and a gait."""

    track_id: int
    height: float  # standing height in pixels
    body_seed: int  # build_figure draws proportions from it: the same body every frame
    looks: Appearance
    positions: np.ndarray  # (T, 2) pelvis pixel position per frame
    yaw: float
    leg_amplitude: float
    arm_amplitude: float
    knee_bend: float
    elbow_bend: float
    phase0: float


def _trajectory(
    rng: np.random.Generator, config: ClipConfig, size: int, direction: float, speed: float
) -> np.ndarray:
    """(T, 2) smooth positions relative to the first frame: velocity = last + jitter."""
    velocity = np.array([direction * speed * size, 0.0])
    steps = np.zeros((config.num_frames, 2))
    for frame in range(1, config.num_frames):
        velocity[0] *= 1.0 + rng.normal(0.0, config.speed_jitter)
        # Never turn round: the walking direction (and the facing) stays that of the person.
        velocity[0] = direction * max(abs(velocity[0]), 0.25 * speed * size)
        velocity[1] += rng.normal(0.0, config.vertical_drift * size)
        steps[frame] = steps[frame - 1] + velocity
    return steps


def _walker(
    rng: np.random.Generator,
    config: ClipConfig,
    size: int,
    track_id: int,
    height: float,
    direction: float,
    start: np.ndarray,
    meet: tuple[float, float] | None = None,
) -> _Walker:
    """A walker starting at `start`, or passing x = meet[0] at frame meet[1] when given."""
    speed = rng.uniform(*config.speed_range)
    positions = _trajectory(rng, config, size, direction, speed) + start
    if meet is not None:
        x_meet, frame = meet
        before, after = positions[int(math.floor(frame)), 0], positions[int(math.ceil(frame)), 0]
        fraction = frame - math.floor(frame)
        positions[:, 0] += x_meet - (before + fraction * (after - before))
    # Walking towards +x means facing image right: forward = (-sin yaw, 0, -cos yaw).
    yaw = -direction * math.pi / 2 + math.radians(float(np.clip(rng.normal(0.0, 20.0), -40, 40)))
    return _Walker(
        track_id=track_id,
        height=height,
        body_seed=int(rng.integers(2**31)),
        looks=sample_appearance(rng),
        positions=positions,
        yaw=yaw,
        leg_amplitude=math.radians(rng.uniform(15, 35)),
        arm_amplitude=math.radians(rng.uniform(10, 35)),
        knee_bend=math.radians(rng.uniform(5, 25)),
        elbow_bend=math.radians(rng.uniform(10, 40)),
        phase0=rng.uniform(0.0, 2.0 * math.pi),
    )


def _sample_walkers(rng: np.random.Generator, config: ClipConfig, size: int) -> list[_Walker]:
    weights = np.asarray(config.people_count_weights, np.float64)
    count = int(rng.choice(len(weights), p=weights / weights.sum()))
    heights = rng.uniform(config.min_height_fraction, config.max_height_fraction, count) * size
    walkers = []
    first = 0
    if count >= 2 and rng.random() < config.crossing_probability:
        frames = config.num_frames
        meet_frame = rng.uniform(0.25 * (frames - 1), 0.75 * (frames - 1) - 0.5) + 0.5
        x_meet = rng.uniform(0.3, 0.7) * size
        y = rng.uniform(0.35, 0.65) * size
        scale = heights[0]
        for index, direction in enumerate((1.0, -1.0)):
            height = scale * rng.uniform(0.9, 1.1)
            start = np.array([0.0, y + rng.normal(0.0, 0.03 * size)])
            walkers.append(
                _walker(rng, config, size, index, height, direction, start, (x_meet, meet_frame))
            )
        first = 2
    for index in range(first, count):
        direction = 1.0 if rng.random() < 0.5 else -1.0
        start = np.array([rng.uniform(-0.3, 1.3) * size, rng.uniform(0.3, 0.7) * size])
        walkers.append(_walker(rng, config, size, index, heights[index], direction, start))
    return walkers


def _figure(walker: _Walker, frame: int) -> Figure:
    """The walker's figure in a frame: the gait phase advances with the distance walked."""
    walked = abs(walker.positions[frame, 0] - walker.positions[0, 0])
    # One gait cycle (two steps) per ~1.6 standing heights.
    phase = walker.phase0 + 2.0 * math.pi * walked / (1.6 * walker.height)
    swing = math.sin(phase)
    legs = tuple(
        LimbAngles(
            swing=sign * walker.leg_amplitude * swing,
            abduction=math.radians(3.0),
            bend=walker.knee_bend * (1.0 + 0.8 * max(0.0, -sign * swing)),
        )
        for sign in (1.0, -1.0)
    )
    arms = tuple(
        LimbAngles(
            swing=-sign * walker.arm_amplitude * swing,
            abduction=math.radians(8.0),
            bend=walker.elbow_bend,
        )
        for sign in (1.0, -1.0)
    )
    pose = Pose(
        template="walking", yaw=walker.yaw, torso_pitch=math.radians(4.0), torso_roll=0.0,
        torso_twist=0.1 * swing, head_pitch=0.0, head_yaw=0.0, image_roll=0.0,
        arms=arms, legs=legs,  # type: ignore[arg-type]
    )
    return build_figure(pose, np.random.default_rng(walker.body_seed), walker.looks)


def _head_box(figure: Figure, scale: float, offset: np.ndarray) -> list[float]:
    """(x, y, w, h) of the drawn head ellipse (half-axes r and 1.12 r, as render draws it)."""
    part = next(part for part in figure.parts if part.kind == "head")
    centre = offset + scale * figure.points[part.indices[0]]
    radius = scale * part.head.radius
    return [float(centre[0] - radius), float(centre[1] - 1.12 * radius),
            float(2 * radius), float(2.24 * radius)]


def render_clip(
    rng: np.random.Generator, image_size: int = DEFAULT_IMAGE_SIZE, config: ClipConfig | None = None
) -> list[tuple[SyntheticScene, list[int], list[list[float]]]]:
    """Renders one clip.

    Args:
        rng: the clip's generator (the only source of randomness).
        image_size: side of the square frames in pixels (>= 32).
        config: clip distribution; defaults to ``ClipConfig()``.

    Returns:
        Per frame: the scene (image (H, W, 3) uint8 RGB and its visible people in draw order,
        keypoints (17, 3) labelled as the module docstring says), each person's track id and
        head box (x, y, w, h).
    """
    config = config or ClipConfig()
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32, got {image_size}.")
    size = int(image_size)
    background = render_background(rng, size, config.scene)
    walkers = sorted(_sample_walkers(rng, config, size), key=lambda w: w.height)
    frames = []
    for frame in range(config.num_frames):
        canvas = background.copy()
        drawn = []
        for walker in walkers:  # far (small) to near (large)
            figure = _figure(walker, frame)
            offset = walker.positions[frame]
            mask = draw_person_mask(figure, walker.height, offset, size)
            if not mask.any():
                continue  # entirely outside the image
            for earlier in drawn:
                earlier[3] |= mask
            draw_figure(canvas, figure, walker.height, offset)
            drawn.append([walker, figure, mask, np.zeros_like(mask)])
        image = finish_image(rng, canvas, config.scene)
        people, track_ids, head_boxes = [], [], []
        for walker, figure, mask, cover in drawn:
            joints = np.round(walker.positions[frame] + walker.height * figure.joints, 2)
            inside = np.all((joints >= 0) & (joints <= size - 1), axis=1)
            labelled = inside & figure.labelled
            rows = np.flatnonzero(mask.any(axis=1))
            annotated = (
                rows[-1] + 1 - rows[0] >= config.label_min_height_fraction * size
                and np.count_nonzero(labelled) >= config.min_labelled_joints
            )
            keypoints = np.zeros((NUM_JOINTS, 3))
            if annotated:
                pixels = np.clip(np.round(joints).astype(np.int64), 0, size - 1)
                covered = cover[pixels[:, 1], pixels[:, 0]]
                keypoints[labelled, :2] = joints[labelled]
                keypoints[labelled, 2] = np.where(covered[labelled], 1.0, 2.0)
            people.append(
                SyntheticPerson(keypoints, mask, walker.height, "walking", bool(annotated))
            )
            track_ids.append(walker.track_id)
            head_boxes.append(_head_box(figure, walker.height, walker.positions[frame]))
        frames.append((SyntheticScene(image, people), track_ids, head_boxes))
    return frames


def clip_annotation_dir(out_dir: str | os.PathLike, split: str) -> pathlib.Path:
    """``out_dir/annotations/<split>``, the folder of the split's per-clip JSON files."""
    return pathlib.Path(out_dir) / "annotations" / split


#: ``workers=0`` gives each worker at least this many clips (a clip is ``num_frames`` images,
#: so a few clips already repay a worker's start).
MIN_CLIPS_PER_WORKER = 8


def generate_synthetic_clips(
    out_dir: str | os.PathLike,
    *,
    split: str,
    num_clips: int,
    seed: int,
    image_size: int = DEFAULT_IMAGE_SIZE,
    config: ClipConfig | None = None,
    workers: int = 0,
) -> pathlib.Path:
    """Writes a PoseTrack 2018 style dataset of synthetic clips (layout in the module docstring).

    The output depends only on the arguments, not on ``workers``: the same arguments give
    identical files.

    Args:
        out_dir: dataset root (created if needed; files of the split are overwritten).
        split: split name (mixed into the random seed).
        num_clips: number of clips (1 .. 999999).
        seed: non-negative base seed.
        image_size: side of the square frames in pixels.
        config: clip distribution; defaults to ``ClipConfig()``.
        workers: processes that render and write whole clips (``writer.resolve_workers``,
            with at least ``MIN_CLIPS_PER_WORKER`` clips each for 0 = one per CPU; 1 =
            serial, in this process).

    Returns:
        The folder of the per-clip annotation files.

    Raises:
        ValueError: naming the first bad argument.
        writer.SyntheticImageError: naming the clip that could not be made.
    """
    config = config or ClipConfig()
    if not 1 <= num_clips <= 999_999:
        raise ValueError(f"num_clips must lie in [1, 999999], got {num_clips}.")
    if not split or any(character in split for character in "/\\"):
        raise ValueError(f"split must be a plain name, got {split!r}.")
    out_dir = pathlib.Path(out_dir)
    annotation_dir = clip_annotation_dir(out_dir, split)
    annotation_dir.mkdir(parents=True, exist_ok=True)
    # The workers only add the clip folders below it.
    (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
    job = _ClipJob(out_dir, split, seed, image_size, config)
    for _ in map_in_order(
        job, num_clips, workers=workers, min_items_per_worker=MIN_CLIPS_PER_WORKER
    ):
        pass
    return annotation_dir


@dataclasses.dataclass(frozen=True)
class _ClipJob:
    """Renders and writes one clip (frames and JSON); an instance is what a worker receives."""

    out_dir: pathlib.Path
    split: str
    seed: int
    image_size: int
    config: ClipConfig

    def __call__(self, clip: int) -> None:
        """Writes clip ``clip``'s frames and annotation file."""
        video_id = f"{clip:06d}"
        try:
            self._write(clip, video_id)
        except Exception as error:
            # From a worker only this message and the formatted traceback come back.
            raise SyntheticImageError(
                f"synthetic {self.split} clip {video_id} failed: {type(error).__name__}: {error}"
            ) from error

    def _write(self, clip: int, video_id: str) -> None:
        out_dir, split, image_size = self.out_dir, self.split, self.image_size
        frame_dir = out_dir / "images" / split / video_id
        frame_dir.mkdir(parents=True, exist_ok=True)
        jpeg = [cv2.IMWRITE_JPEG_QUALITY, self.config.scene.jpeg_quality]
        images, annotations = [], []
        frames = render_clip(image_rng(self.seed, split, clip), image_size, self.config)
        for frame, (scene, track_ids, head_boxes) in enumerate(frames):
            image_id = int(f"1{video_id}{frame:04d}")
            file_name = f"images/{split}/{video_id}/{frame:06d}.jpg"
            ok, encoded = cv2.imencode(".jpg", scene.image[..., ::-1], jpeg)
            if not ok:
                raise RuntimeError(f"JPEG encoding failed for clip {video_id} frame {frame}.")
            (out_dir / file_name).write_bytes(encoded.tobytes())
            images.append({
                "id": image_id, "frame_id": image_id, "vid_id": video_id,
                "file_name": file_name, "height": image_size, "width": image_size,
                "nframes": len(frames), "is_labeled": True,
                "ignore_regions_x": [], "ignore_regions_y": [],
            })
            for index, annotation in enumerate(scene_annotations(scene, image_id, 0)):
                annotation.update(
                    id=image_id * 100 + index, track_id=track_ids[index],
                    bbox_head=head_boxes[index],
                )
                annotations.append(annotation)
        # Categories first and images next: PoseTrack's "vid_id" then sits in the first
        # bytes, where the reader registry's format detector looks.
        dataset = {
            "categories": [coco_person_category()],
            "images": images,
            "annotations": annotations,
            "info": {"description": "Synthetic walking people clips "
                     "(associative_embedding.data.synthetic.clips)", "split": split,
                     "seed": self.seed, "clip": clip},
        }
        path = clip_annotation_dir(out_dir, split) / f"{video_id}.json"
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(dataset, separators=(",", ":")))
        os.replace(temporary, path)


@dataclasses.dataclass(frozen=True)
class ClipStatistics:
    """What a split of clips contains.

    Attributes:
        num_clips: clips.
        num_frames: frames over all clips.
        num_tracks: tracks with at least one annotated frame.
        annotated_people_per_frame: mean annotated people per frame.
        clips_with_crossing: clips with at least one crossing pair (module docstring).
        crossing_share: clips_with_crossing / num_clips.
        occluded_joint_share: labelled joints with v = 1 among all labelled joints.
        tracks_entering_or_leaving: tracks missing from the first or the last frame.
    """

    num_clips: int
    num_frames: int
    num_tracks: int
    annotated_people_per_frame: float
    clips_with_crossing: int
    crossing_share: float
    occluded_joint_share: float
    tracks_entering_or_leaving: int


def crossing_pairs(dataset: dict) -> list[tuple[int, int]]:
    """The pairs of track ids of one clip's PoseTrack JSON that cross (module docstring).

    Args:
        dataset: one clip's annotations (``images`` with ``frame_id`` order, ``annotations``
            with ``track_id``, ``bbox`` and ``num_keypoints``).

    Returns:
        Sorted (a, b) pairs with a < b.
    """
    order = {image["id"]: index for index, image in enumerate(
        sorted(dataset["images"], key=lambda image: image["frame_id"]))}
    boxes: dict[int, dict[int, np.ndarray]] = {}  # track -> frame -> (x1, y1, x2, y2)
    for annotation in dataset["annotations"]:
        if annotation.get("num_keypoints", 0) <= 0:
            continue  # not annotated in this frame
        x, y, width, height = annotation["bbox"]
        boxes.setdefault(annotation["track_id"], {})[order[annotation["image_id"]]] = np.array(
            [x, y, x + width, y + height]
        )
    pairs = []
    tracks = sorted(boxes)
    for i, a in enumerate(tracks):
        for b in tracks[i + 1:]:
            signs = set()
            for frame in sorted(set(boxes[a]) & set(boxes[b])):
                box_a, box_b = boxes[a][frame], boxes[b][frame]
                if min(box_a[3], box_b[3]) <= max(box_a[1], box_b[1]):
                    continue  # no vertical overlap
                difference = (box_a[0] + box_a[2]) - (box_b[0] + box_b[2])
                if difference != 0:
                    signs.add(difference > 0)
            if len(signs) == 2:
                pairs.append((a, b))
    return pairs


def clip_statistics(datasets: str | os.PathLike | Iterable[dict]) -> ClipStatistics:
    """Statistics of a split: a folder of per-clip JSON files, or the loaded clips.

    Args:
        datasets: ``clip_annotation_dir(out_dir, split)`` or an iterable of clip dicts.

    Returns:
        A `ClipStatistics`.
    """
    if isinstance(datasets, (str, os.PathLike)):
        datasets = [json.loads(path.read_text())
                    for path in sorted(pathlib.Path(datasets).glob("*.json"))]
    num_clips = num_frames = num_tracks = crossing = people = edge_tracks = 0
    labelled = occluded = 0
    for dataset in datasets:
        num_clips += 1
        num_frames += len(dataset["images"])
        frames = sorted(image["frame_id"] for image in dataset["images"])
        frame_of = {image["id"]: image["frame_id"] for image in dataset["images"]}
        seen: dict[int, set[int]] = {}
        for annotation in dataset["annotations"]:
            if annotation.get("num_keypoints", 0) <= 0:
                continue
            people += 1
            seen.setdefault(annotation["track_id"], set()).add(frame_of[annotation["image_id"]])
            flags = np.asarray(annotation["keypoints"], np.float64).reshape(-1, 3)[:, 2]
            labelled += int(np.count_nonzero(flags > 0))
            occluded += int(np.count_nonzero(flags == 1))
        num_tracks += len(seen)
        edge_tracks += sum(
            1 for track_frames in seen.values()
            if frames and (frames[0] not in track_frames or frames[-1] not in track_frames)
        )
        crossing += bool(crossing_pairs(dataset))
    return ClipStatistics(
        num_clips=num_clips,
        num_frames=num_frames,
        num_tracks=num_tracks,
        annotated_people_per_frame=people / num_frames if num_frames else 0.0,
        clips_with_crossing=crossing,
        crossing_share=crossing / num_clips if num_clips else 0.0,
        occluded_joint_share=occluded / labelled if labelled else 0.0,
        tracks_entering_or_leaving=edge_tracks,
    )
