"""The evaluations of a training run: the best checkpoint by the task's metric, metrics.json
(every evaluation's history), TensorBoard scalars, and the report the tools print.

`EvaluationBookkeeping` is a base of `training.trainer.Trainer`; a task's trainer supplies
`evaluate`, `best_metric` and, optionally, the report's wording (`evaluation_summary`,
`metrics_description`, `evaluation_lines`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
from absl import logging


class EvaluationBookkeeping:
    """Keeps the best checkpoint and the metrics files of the evaluations during training.

    Expects `workdir`, `is_chief`, `model`, `best_metric`, `config`, `data` (with
    `val_records`) and `evaluate(step)` on the instance (the trainer's).
    """

    workdir: str
    is_chief: bool
    model: Any
    best_metric: str
    config: Any
    data: Any

    def evaluate(self, step: int) -> dict[str, float]:
        raise NotImplementedError

    def evaluation_records(self) -> list[Any]:
        """The validation records an evaluation scores: the first `eval.max_images` of
        `data.val_records` (all of them when 0)."""
        records = self.data.val_records
        max_images = int(self.config.eval.max_images)
        return records[:max_images] if max_images > 0 else records

    def evaluation_dir(self, step: int) -> str:
        """WORKDIR/eval/step_<step>: where the evaluation at `step` writes its files."""
        return os.path.join(self.workdir, "eval", f"step_{step}")

    def _metrics_path(self) -> str:
        return os.path.join(self.workdir, "metrics.json")

    def _read_metrics(self) -> dict[str, float]:
        try:
            with open(self._metrics_path()) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def _evaluate_and_keep_best(
        self, step: int, writer: tf.summary.SummaryWriter | None
    ) -> dict[str, float]:
        if not self.is_chief:
            return {}
        metrics = self.evaluate(step)
        metrics["step"] = step
        previous = self._read_metrics()
        history = previous.get("history", [])
        history.append({k: v for k, v in metrics.items() if k != "history"})
        key = self.best_metric
        best_value = max((entry.get(key, -1.0) for entry in history), default=-1.0)
        if metrics.get(key, -1.0) >= best_value:
            best = tf.train.Checkpoint(model=self.model)
            best.write(os.path.join(self.workdir, "best", "model"))
            with open(os.path.join(self.workdir, "best", "step.json"), "w") as handle:
                json.dump({"step": step, key: metrics.get(key)}, handle)
        metrics["history"] = history
        metrics[f"best_{key}"] = best_value
        with open(self._metrics_path(), "w") as handle:
            json.dump(metrics, handle, indent=2)
        if writer is not None:
            with writer.as_default(step=step):
                for name, value in metrics.items():
                    if isinstance(value, int | float) and name != "step":
                        tf.summary.scalar(f"eval/{name}", value)
        logging.info("eval at step %d: %s", step, self.evaluation_summary(metrics))
        return metrics

    def evaluation_summary(self, metrics: dict[str, Any]) -> str:
        """The headline metrics of one evaluation, for the log line."""
        return f"{self.best_metric}={metrics.get(self.best_metric, float('nan')):.4f}"

    def evaluation_report(self, metrics: dict[str, Any]) -> str:
        """The labelled summary of one evaluation (`metrics` as `train` returns them): its
        metrics, the best checkpoint so far, and where the drawings and metrics files are."""
        step = metrics.get("step")
        title = f"Evaluation at step {step}"
        if isinstance(metrics.get("num_images"), int):
            title += f" on {metrics['num_images']} validation images"
        description = self.metrics_description(metrics)
        lines = [title + (f" ({description})" if description else "") + ":"]
        lines += self.evaluation_lines(metrics)
        lines += self._report_locations(metrics)
        return "\n".join(lines)

    def metrics_description(self, metrics: dict[str, Any]) -> str:
        """What the metrics measure, for the report's title ('' to say nothing)."""
        return ""

    def evaluation_lines(self, metrics: dict[str, Any]) -> list[str]:
        """The report's metric lines (indented)."""
        return [f"  {self.evaluation_summary(metrics)}"]

    def _report_locations(self, metrics: dict[str, Any]) -> list[str]:
        key = self.best_metric
        lines = []
        history = [entry for entry in metrics.get("history", []) if key in entry]
        if history:
            best = max(history, key=lambda entry: entry[key])
            lines.append(
                f"  best {key}: {best[key]:.3f} at step {best.get('step')} "
                f"(checkpoint {os.path.join(self.workdir, 'best', 'model')})"
            )
        eval_dir = self.evaluation_dir(metrics.get("step"))
        drawing_dir = os.path.join(eval_dir, "drawings")
        if os.path.isdir(drawing_dir):
            count = sum(1 for name in os.listdir(drawing_dir) if not name.startswith("."))
            lines.append(f"  drawings: {drawing_dir}{os.sep} ({count} images)")
        lines.append(f"  metrics.json: {self._metrics_path()} (every evaluation)")
        if os.path.isfile(os.path.join(eval_dir, "metrics.json")):
            lines.append(f"                {os.path.join(eval_dir, 'metrics.json')} (this one)")
        return lines
