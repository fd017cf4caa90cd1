"""Learning-rate schedules: the official step drop, and cosine decay, each with warm-up."""

from __future__ import annotations

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="associative_embedding")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 for `warmup_steps`, then the official step drop or cosine decay.

    kind='step' (official): `learning_rate` until `decay_step`, then `final_learning_rate`
    (2e-4 → 1e-5 in the official code). kind='cosine': cosine from `learning_rate` at the end
    of warm-up down to `final_learning_rate` at `total_steps`. kind='constant': no decay.
    """

    def __init__(
        self,
        learning_rate: float,
        *,
        kind: str = "step",
        final_learning_rate: float = 1e-5,
        decay_step: int = 150_000,
        total_steps: int = 200_000,
        warmup_steps: int = 0,
    ) -> None:
        if kind not in ("step", "cosine", "constant"):
            raise ValueError(f"unknown schedule kind {kind!r}")
        self.learning_rate = float(learning_rate)
        self.kind = kind
        self.final_learning_rate = float(final_learning_rate)
        self.decay_step = int(decay_step)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        base = tf.constant(self.learning_rate, tf.float32)
        final = tf.constant(self.final_learning_rate, tf.float32)
        if self.kind == "step":
            rate = tf.where(step < self.decay_step, base, final)
        elif self.kind == "cosine":
            span = max(self.total_steps - self.warmup_steps, 1)
            progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
            rate = final + 0.5 * (base - final) * (1.0 + tf.cos(math.pi * progress))
        else:
            rate = base
        if self.warmup_steps > 0:
            rate = rate * tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return rate

    def get_config(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "kind": self.kind,
            "final_learning_rate": self.final_learning_rate,
            "decay_step": self.decay_step,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }
