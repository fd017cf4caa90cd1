"""WarmupSchedule against hand-computed learning rates."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from associative_embedding.training.schedules import WarmupSchedule


def _rates(schedule: WarmupSchedule, steps: list[int]) -> list[float]:
    return [float(schedule(step)) for step in steps]


def test_step_schedule_is_the_official_drop():
    schedule = WarmupSchedule(2e-4, kind="step", final_learning_rate=1e-5, decay_step=100)
    np.testing.assert_allclose(
        _rates(schedule, [0, 1, 99, 100, 101, 10_000]),
        [2e-4, 2e-4, 2e-4, 1e-5, 1e-5, 1e-5],
        rtol=1e-6,
    )


def test_cosine_schedule_after_warmup():
    # Warm-up 10 steps, then cosine from 1.0 at step 10 to 0.1 at step 110.
    schedule = WarmupSchedule(
        1.0, kind="cosine", final_learning_rate=0.1, total_steps=110, warmup_steps=10
    )
    expected = {
        10: 1.0,
        35: 0.1 + 0.45 * (1 + math.cos(math.pi * 0.25)),  # 0.8682
        60: 0.55,
        85: 0.1 + 0.45 * (1 + math.cos(math.pi * 0.75)),  # 0.2318
        110: 0.1,
        500: 0.1,  # past the end: held at the final rate
    }
    np.testing.assert_allclose(_rates(schedule, list(expected)), list(expected.values()),
                               rtol=1e-5)


def test_linear_warmup_scales_the_schedule():
    # (step + 1) / warmup_steps: the first update already moves (lr / 4), step 3 reaches lr.
    step_schedule = WarmupSchedule(
        2e-4, kind="step", final_learning_rate=1e-5, decay_step=100, warmup_steps=4
    )
    np.testing.assert_allclose(
        _rates(step_schedule, [0, 1, 2, 3, 4, 50, 100]),
        [5e-5, 1e-4, 1.5e-4, 2e-4, 2e-4, 2e-4, 1e-5],
        rtol=1e-6,
    )
    cosine = WarmupSchedule(1.0, kind="cosine", final_learning_rate=0.0, total_steps=14,
                            warmup_steps=4)
    # During warm-up the cosine part is still at its start (1.0).
    np.testing.assert_allclose(_rates(cosine, [0, 1, 9]), [0.25, 0.5, 0.5], rtol=1e-6)


def test_constant_schedule_and_bad_kind():
    assert _rates(WarmupSchedule(3e-3, kind="constant"), [0, 10**6]) == pytest.approx([3e-3] * 2)
    with pytest.raises(ValueError, match="unknown schedule kind 'linear'"):
        WarmupSchedule(1e-3, kind="linear")


def test_schedule_round_trips_through_keras_serialisation():
    schedule = WarmupSchedule(
        2e-4, kind="cosine", final_learning_rate=1e-6, total_steps=50, warmup_steps=5
    )
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(restored, WarmupSchedule)
    steps = [0, 3, 5, 20, 49, 50]
    np.testing.assert_allclose(_rates(restored, steps), _rates(schedule, steps), rtol=1e-7)
