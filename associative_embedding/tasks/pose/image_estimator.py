"""Pose estimation of a decoded image (an RGB array: a photo, a video frame, a webcam frame).

``tasks.pose.estimator.PoseEstimator`` works on dataset records (it reads the image file and
can substitute ground truth). ``ImagePoseEstimator`` runs the same test-time steps on pixels
already in memory (through ``PoseEstimator.image_maps``) and also returns what the pictures
need (the fused maps and the poses on their grid):

1. per scale, ``data.augment.eval_preprocess`` (long side to ``input_size * scale``,
   right/bottom padding to the network's multiple) and the network on the image and, with
   ``flip``, its mirror (one batch);
2. flip and multi-scale fusion (``codec.fuse_outputs``, 'official' or 'paper' tags) onto the
   largest scale's grid;
3. grouping (``codec.group_poses``) and back-projection to image pixels
   (``codec.poses_to_image``);
4. with a ``refiner`` (``tasks.refinement.refine.PoseRefiner``), the paper's single-person
   refinement of every person on the image.

For the same image and settings it returns exactly ``PoseEstimator``'s poses (tested).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from associative_embedding.codec import (
    group_poses,
    map_from_image,
    poses_to_image,
    warp_maps,
)
from associative_embedding.core import transforms
from associative_embedding.core.keypoint_info import (
    KeypointInfo,
    get_keypoint_info,
)
from associative_embedding.modeling.loading import Predictor
from associative_embedding.tasks.pose.estimator import InferenceConfig, PoseEstimator, PoseRefiner

__all__ = [
    "ImagePoseEstimator",
    "ImagePrediction",
    "NetworkLayout",
    "infer_layout",
]


@dataclasses.dataclass(frozen=True)
class NetworkLayout:
    """What a network's output channels mean.

    Attributes:
        keypoint_info: the dataset whose K joints the outputs hold.
        tag_dim: D (output channels = K * (1 + D)).
        output_stride: input pixels per output pixel.
    """

    keypoint_info: KeypointInfo
    tag_dim: int
    output_stride: int

    @property
    def num_joints(self) -> int:
        return self.keypoint_info.num_joints


def infer_layout(predictor: Predictor, keypoint_info: KeypointInfo | None = None) -> NetworkLayout:
    """Runs the network once on a blank image to read its output layout.

    Args:
        predictor: the network.
        keypoint_info: the dataset, when known; otherwise the registered dataset whose joint
            count divides the output channels into K * (1 + D) is looked for.

    Returns:
        The ``NetworkLayout``.

    Raises:
        ValueError: naming the model when the channels fit no (or several) registered
            datasets, or do not fit the given one.
    """
    size = predictor.input_multiple
    outputs = predictor(np.zeros((1, size, size, 3), np.float32))
    channels = int(outputs.shape[-1])
    stride = size / outputs.shape[1]
    if stride != int(stride) or outputs.shape[1] * int(stride) != size:
        raise ValueError(f"{predictor.source}: input {size} gives output {outputs.shape[1:3]}.")

    def fits(info: KeypointInfo) -> bool:
        return channels % info.num_joints == 0 and channels // info.num_joints >= 2

    if keypoint_info is None:
        candidates = [
            get_keypoint_info(name) for name in ("coco", "crowdpose", "mpii")
            if fits(get_keypoint_info(name))
        ]
        if len(candidates) != 1:
            names = [info.name for info in candidates] or "none"
            raise ValueError(
                f"{predictor.source}: cannot tell the dataset from {channels} output channels "
                f"(K * (1 + D) fits: {names}); pass the dataset explicitly."
            )
        keypoint_info = candidates[0]
    elif not fits(keypoint_info):
        raise ValueError(
            f"{predictor.source}: {channels} output channels do not fit {keypoint_info.name}'s "
            f"K = {keypoint_info.num_joints} joints (expected K * (1 + D))."
        )
    return NetworkLayout(
        keypoint_info=keypoint_info,
        tag_dim=channels // keypoint_info.num_joints - 1,
        output_stride=int(stride),
    )


@dataclasses.dataclass
class ImagePrediction:
    """Poses of one image and the maps they were decoded from.

    Attributes:
        poses: (P, K, 3) float32 (x, y, score) in image pixels (pixel-centre convention),
            people sorted by score; missing joints have score 0.
        scores: (P,) float32 person scores.
        map_poses: (P, K, 3) float32 the same poses in heatmap corner coordinates of the
            fused maps (the decoder's output: pixel j spans [j, j + 1); after a refiner, the
            refined poses mapped onto that grid).
        heatmaps: (h, w, K) float32 fused heatmaps (grid of the largest scale, padding
            included).
        tags: (h, w, K, D') float32 fused tags (D' = D, 2D with flip, more with
            ``fusion='paper'``).
        map_from_image: (3, 3) float64 affine from image pixel centres to map pixel centres.
        image_size: (height, width) of the image.
    """

    poses: np.ndarray
    scores: np.ndarray
    map_poses: np.ndarray
    heatmaps: np.ndarray
    tags: np.ndarray
    map_from_image: np.ndarray
    image_size: tuple[int, int]

    @property
    def num_people(self) -> int:
        return int(self.poses.shape[0])

    def maps_on_image(self, max_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps and tags resampled onto a grid covering exactly the image.

        Args:
            max_size: long side of that grid; default the maps' own resolution (image size
                times the map scale), so nothing is upsampled needlessly.

        Returns:
            heatmaps (H', W', K) and tags (H', W', K, D') float32; their grid spans the image
            (padding dropped), with H' / W' = height / width of the image.
        """
        height, width = self.image_size
        map_scale = float(np.hypot(*self.map_from_image[:2, 0]))
        long_side = max(height, width) * map_scale
        if max_size is not None:
            long_side = min(long_side, max_size)
        grid_scale = max(long_side, 1.0) / max(height, width)
        grid_hw = (max(1, int(round(height * grid_scale))), max(1, int(round(width * grid_scale))))
        # Grid pixel centres -> image pixel centres -> map pixel centres.
        image_from_grid = transforms.scale_matrix(width / grid_hw[1], height / grid_hw[0])
        map_from_grid = self.map_from_image @ image_from_grid
        heatmaps = warp_maps(self.heatmaps, map_from_grid, grid_hw, border="replicate")
        tags = warp_maps(self.tags, map_from_grid, grid_hw, border="replicate")
        return heatmaps, tags


class ImagePoseEstimator:
    """Estimates the poses of an RGB image array (see the module docstring for the steps).

    Example:
        >>> estimator = ImagePoseEstimator(load_predictor("model.keras"), COCO,
        ...                                InferenceConfig(input_size=512, flip=True))
        >>> prediction = estimator(image)  # image (H, W, 3) uint8 RGB
        >>> prediction.poses.shape
        (P, 17, 3)
    """

    def __init__(
        self,
        predictor: Predictor,
        keypoint_info: KeypointInfo,
        config: InferenceConfig | None = None,
        refiner: PoseRefiner | None = None,
    ) -> None:
        """Creates the estimator.

        Args:
            predictor: the network (``modeling.loading.load_predictor``).
            keypoint_info: the dataset's metadata (flip index, grouping order).
            config: test-time settings; its oracles must be empty (there is no ground truth).
            refiner: optional single-person refinement of the decoded poses
                (``tasks.refinement.refine.PoseRefiner``).

        Raises:
            ValueError: when oracles are requested.
        """
        config = config or InferenceConfig()
        if config.oracles:
            raise ValueError(
                f"oracles {sorted(config.oracles)} need ground truth; images have none."
            )
        self.predictor = predictor
        self.keypoint_info = keypoint_info
        self.config = config
        self.refiner = refiner
        self._decoder_kwargs = {"grouping_order": keypoint_info.grouping_order, **config.decoder}
        # The network, flip and multi-scale fusion are PoseEstimator's (one implementation).
        self._estimator = PoseEstimator(predictor, keypoint_info, config)

    def estimate(self, image: np.ndarray) -> ImagePrediction:
        """Estimates the poses of one image.

        Args:
            image: (H, W, 3) uint8 RGB (or float in [0, 1]).

        Returns:
            An ``ImagePrediction``.

        Raises:
            ValueError: on a malformed image or a network whose outputs do not fit the
                dataset or the configured output stride.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
            raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}.")
        config = self.config
        height, width = image.shape[:2]
        fused_heatmaps, fused_tags, input_from_image = self._estimator.image_maps(image)
        map_poses, scores = group_poses(fused_heatmaps, fused_tags, **self._decoder_kwargs)
        poses = poses_to_image(map_poses, input_from_image, config.output_stride)
        maps_from_image = map_from_image(input_from_image, config.output_stride)
        if self.refiner is not None:
            poses, scores = self.refiner(image, poses, scores)
            # Map pixel centres + 0.5: the decoder's corner coordinates.
            map_poses = transforms.transform_points(poses, maps_from_image)
            map_poses[..., :2] += np.float32(0.5)
        return ImagePrediction(
            poses=poses,
            scores=scores,
            map_poses=map_poses,
            heatmaps=fused_heatmaps,
            tags=fused_tags,
            map_from_image=maps_from_image,
            image_size=(int(height), int(width)),
        )

    __call__ = estimate
