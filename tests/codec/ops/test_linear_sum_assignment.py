"""``linear_sum_assignment_tf`` against SciPy's solver, ties included."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy.optimize import linear_sum_assignment

from associative_embedding.codec.ops import linear_sum_assignment_tf


def test_assignment_equals_scipy_including_ties():
    solve = tf.function(
        linear_sum_assignment_tf,
        input_signature=[
            tf.TensorSpec([30, 30], tf.float64),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32),
        ],
    )
    rng = np.random.default_rng(0)
    for trial in range(240):
        num_rows, num_cols = (int(n) for n in rng.integers(0, 31, 2))
        kind = trial % 4
        if kind == 0:  # small integers: many tied optima
            cost = rng.integers(0, 3, (num_rows, num_cols)).astype(np.float64)
        elif kind == 1:
            cost = rng.normal(size=(num_rows, num_cols))
        else:  # the decoder's cost, official (2) or with blocked distant pairs (3)
            distance = np.abs(rng.normal(0, 3, (num_rows, 1)) - rng.normal(0, 3, (1, num_cols)))
            cost = np.rint(distance) * 100.0 - rng.choice([0.3, 0.5, 0.7], (num_rows, 1))
            if kind == 3:
                cost[distance >= 1.0] = 5000.0
        padded = np.zeros((30, 30))
        padded[:num_rows, :num_cols] = cost
        rows, cols = linear_sum_assignment(cost)
        expected = np.full(30, -1)
        expected[rows] = cols
        got = solve(padded, num_rows, num_cols).numpy()
        np.testing.assert_array_equal(got, expected, err_msg=f"trial {trial}")
