"""The multi-person pose task on the generic loop: keypoint targets, heatmap + tag losses,
COCO / MPII evaluation and the best checkpoint by AP."""

from __future__ import annotations

from typing import Any

import ml_collections
import tensorflow as tf

from associative_embedding import losses
from associative_embedding.core.keypoint_info import KeypointInfo, get_keypoint_info
from associative_embedding.evaluation.coco_keypoints import METRIC_NAMES
from associative_embedding.tasks.pose import evaluation_hook, inputs
from associative_embedding.training.trainer import Trainer

LOSS_PARTS = ("heatmap", "pull", "push")




class PoseTrainer(Trainer):
    """Multi-person pose: heatmap + tag losses on keypoint targets, COCO/MPII evaluation."""

    loss_parts = LOSS_PARTS
    best_metric = "AP"

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        workdir: str,
        strategy: tf.distribute.Strategy | None = None,
        data: Any | None = None,
    ) -> None:
        self.keypoint_info: KeypointInfo = get_keypoint_info(config.dataset.keypoints)
        super().__init__(config, workdir, strategy, data)

    def prepare_data(self) -> Any:
        return inputs.prepare_data(
            self.config, self.workdir, is_chief=self.is_chief, worker_index=self.worker_index
        )

    def build_replica_dataset(
        self, input_context: tf.distribute.InputContext, seed: int
    ) -> tf.data.Dataset:
        return inputs.train_dataset(
            self.config, self.data, self.keypoint_info, input_context, seed=seed
        )

    def build_losses(
        self, outputs: tf.Tensor, batch: dict[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """Per-example weighted loss (B,) and unweighted parts {name: (B,)}."""
        loss_config = self.config.loss
        return losses.per_example_total_loss(
            outputs,
            batch,
            num_joints=self.keypoint_info.num_joints,
            tag_dim=self.config.model.tag_dim,
            heatmap_weight=loss_config.heatmap_weight,
            pull_weight=loss_config.pull_weight,
            push_weight=loss_config.push_weight,
            push_type=loss_config.push_type,
            heatmap_foreground_weight=loss_config.heatmap_foreground_weight,
        )

    def evaluate(self, step: int) -> dict[str, float]:
        """Validation AP (and the GT-detection diagnostic); writes drawings. Chief only."""
        return evaluation_hook.evaluate_model(self, step)

    def evaluation_summary(self, metrics: dict[str, Any]) -> str:
        text = "AP={:.3f} AP50={:.3f}".format(
            metrics.get("AP", float("nan")), metrics.get("AP50", float("nan"))
        )
        if isinstance(metrics.get("AP_gt_detections"), int | float):
            text += f" AP_gt_detections={metrics['AP_gt_detections']:.3f} (diagnostic)"
        return text

    def metrics_description(self, metrics: dict[str, Any]) -> str:
        description = "COCO keypoint AP/AR over OKS"
        if not all(name in metrics for name in METRIC_NAMES):
            description = "MPII multi-person AP, PCKh@0.5"
        test_time = metrics.get(evaluation_hook.TEST_TIME_KEY)
        return f"{description}, {test_time}" if isinstance(test_time, str) else description

    def evaluation_lines(self, metrics: dict[str, Any]) -> list[str]:
        return evaluation_hook.evaluation_table(metrics)
