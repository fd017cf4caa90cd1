"""The tracking task on the generic loop: space-time associative embedding.

The network is the pose task's `StackedHourglass` and sees ONE frame at a time: the F frames of
each clip sample are rows of the image batch (`inputs.train_dataset`), so the trained network is
an ordinary single-image pose network whose tags also identify people over time. Per frame it is
trained with the heatmap loss; per clip with the temporal grouping loss
(`losses.temporal.stacked_temporal_grouping_loss`): a track's joints in all F frames are pulled
to one tag and the clip's tracks are pushed apart.

Why one frame and not a pair stacked as input (the paper's space-time variant): a tracker built
on per-frame tags runs the network once per frame at test time (a pair network needs every
frame twice, or a second network for linking), accepts any frame gap and any number of frames,
and keeps the pose decoder unchanged. The cost is that the tag can only come from what one frame
shows, i.e. appearance and not motion. Measured on the synthetic clips (every person has its own
colours) with the 1200-step model of `experiments/synthetic_tracking.py`, reading its tags at
the ground-truth joints of every second frame: tags alone link people with IDF1 0.79 (70 ID
switches), where OKS matching of the same poses reaches 0.65 (217). A pair network was not
trained for comparison (no time on 2 shared cores), so its gain is not measured.
"""

from __future__ import annotations

from typing import Any

import ml_collections
import tensorflow as tf

from associative_embedding.core.keypoint_info import KeypointInfo, get_keypoint_info
from associative_embedding.losses.heatmap import compute_dtype, squared_error_mean
from associative_embedding.losses.stacked import weighted_stack_means
from associative_embedding.losses.temporal import stacked_temporal_grouping_loss
from associative_embedding.modeling.outputs import split_outputs
from associative_embedding.tasks.tracking import evaluation_hook, inputs
from associative_embedding.training.trainer import Trainer

LOSS_PARTS = ("heatmap", "pull", "push")


def per_clip_tracking_loss(
    outputs: tf.Tensor,
    batch: dict[str, tf.Tensor],
    *,
    num_joints: int,
    tag_dim: int,
    heatmap_weight: float,
    pull_weight: float,
    push_weight: float,
    push_type: str,
    heatmap_foreground_weight: float = 0.0,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Weighted loss per clip: the frames' mean heatmap loss + the temporal pull and push.

    Args:
        outputs: (B * F, S, h, w, K (1 + D)) network outputs of the clips' frames, clip-major.
        batch: 'heatmaps' (B, F, h, w, K), 'mask' (B, F, h, w), 'keypoints' (B, F, P, K, 3).
        num_joints, tag_dim: K and D.
        heatmap_weight, pull_weight, push_weight: the terms' weights.
        push_type: 'exp' or 'hinge'.
        heatmap_foreground_weight: see `losses.heatmap.heatmap_loss`.

    Returns:
        loss: (B,) weighted sum of the terms, each a mean over stacks.
        parts: {'heatmap', 'pull', 'push'}: (B,) unweighted terms.
    """
    target_heatmaps = batch["heatmaps"]
    frames_shape = tf.shape(target_heatmaps)
    clips, frames = frames_shape[0], frames_shape[1]
    heatmaps, tags = split_outputs(outputs, num_joints, tag_dim)
    dtype = compute_dtype(outputs.dtype)
    stacks = tf.shape(heatmaps)[1]
    map_shape = tf.shape(heatmaps)[2:]
    # (B, F, S, h, w, K) against the frames' targets broadcast over the stacks.
    heatmaps = tf.reshape(tf.cast(heatmaps, dtype),
                          tf.concat([[clips, frames, stacks], map_shape], axis=0))
    mask = tf.cast(batch["mask"], dtype)[:, :, None, ..., None]
    heatmap = squared_error_mean(
        heatmaps, tf.cast(target_heatmaps, dtype)[:, :, None], mask, heatmap_foreground_weight
    )  # (B, F, S)
    heatmap = tf.reduce_mean(heatmap, axis=1)  # (B, S)
    tags = tf.reshape(tags, tf.concat([[clips, frames], tf.shape(tags)[1:]], axis=0))
    tags = tf.transpose(tags, [0, 2, 1, 3, 4, 5, 6])  # (B, S, F, h, w, K, D)
    push, pull = stacked_temporal_grouping_loss(tags, batch["keypoints"], push_type)
    return weighted_stack_means(
        {"heatmap": heatmap, "pull": pull, "push": push},
        {"heatmap": heatmap_weight, "pull": pull_weight, "push": push_weight},
    )


class TrackingTrainer(Trainer):
    """Pose tracking: per-frame heatmaps + space-time tags; MOTA / IDF1 against a baseline.

    `train.global_batch_size` counts clip samples; each step runs the network on
    global_batch_size * `input.frames_per_clip` frames.
    """

    loss_parts = LOSS_PARTS
    best_metric = "IDF1"

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        workdir: str,
        strategy: tf.distribute.Strategy | None = None,
        data: Any | None = None,
    ) -> None:
        self.keypoint_info: KeypointInfo = get_keypoint_info(config.dataset.keypoints)
        super().__init__(config, workdir, strategy, data)
        self._table: inputs.FrameTable | None = None

    def prepare_data(self) -> inputs.TrackingData:
        return inputs.prepare_data(self.config, self.workdir)

    def frame_table(self) -> inputs.FrameTable:
        """The training frames laid out for tf.data (built once)."""
        if self._table is None:
            self._table = inputs.frame_table(
                self.data.train_videos, self.keypoint_info.num_joints,
                frames_per_clip=int(self.config.input.frames_per_clip),
                max_frame_gap=int(self.config.input.max_frame_gap),
                max_tracks=int(self.config.codec.max_people),
            )
        return self._table

    def build_replica_dataset(
        self, input_context: tf.distribute.InputContext, seed: int
    ) -> tf.data.Dataset:
        return inputs.train_dataset(
            self.config, self.frame_table(), self.keypoint_info, input_context, seed=seed
        )

    def build_losses(
        self, outputs: tf.Tensor, batch: dict[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """Per-clip weighted loss (B,) and unweighted parts {name: (B,)}."""
        loss = self.config.loss
        return per_clip_tracking_loss(
            outputs, batch, num_joints=self.keypoint_info.num_joints,
            tag_dim=int(self.config.model.tag_dim), heatmap_weight=loss.heatmap_weight,
            pull_weight=loss.pull_weight, push_weight=loss.push_weight,
            push_type=loss.push_type, heatmap_foreground_weight=loss.heatmap_foreground_weight,
        )

    def evaluate(self, step: int) -> dict[str, float]:
        """Tracks the validation videos with tags and with the overlap baseline. Chief only."""
        return evaluation_hook.evaluate_tracking(self, step)

    def evaluation_summary(self, metrics: dict[str, Any]) -> str:
        return evaluation_hook.summary_line(metrics)

    def metrics_description(self, metrics: dict[str, Any]) -> str:
        return "MOTA / IDF1 / ID switches on person boxes (motmetrics)"

    def evaluation_lines(self, metrics: dict[str, Any]) -> list[str]:
        return evaluation_hook.evaluation_table(metrics)
