"""Minimum-cost rectangular assignment in TensorFlow ops, tie-for-tie equal to SciPy.

``linear_sum_assignment_tf`` is ``scipy.optimize.linear_sum_assignment`` written with
TensorFlow while loops, so an exported graph (SavedModel, XLA) can solve assignments without
Python or SciPy. It ports SciPy's ``rectangular_lsap.cpp`` (Crouse's shortest augmenting path
Jonker-Volgenant variant), replicating its column scan order, its tie-breaking and its
floating-point operation order, so it returns the same assignment as SciPy also among tied
optima (costs made of rounded distances tie a lot). Cost matrices are padded to a static
(R, C) buffer; the rows and columns in use are dynamic.
"""

from __future__ import annotations

import tensorflow as tf

_INF = float("inf")


def linear_sum_assignment_tf(
    cost: tf.Tensor, num_rows: tf.Tensor | int, num_cols: tf.Tensor | int
) -> tf.Tensor:
    """Minimum-cost rectangular assignment, the same as ``scipy.optimize.linear_sum_assignment``.

    A port of SciPy's ``rectangular_lsap.cpp`` (shortest augmenting path, Crouse 2016) to
    TensorFlow while loops, vectorised over columns. It keeps SciPy's transpose of tall
    matrices, its column scan order (``remaining`` filled in reverse, removals swap in the
    last element), its rule for equal path costs (prefer a free column) and its float64
    operation order, so it picks the same optimum as SciPy among tied ones.

    Args:
        cost: (R, C) float64 with static R, C; only ``cost[:num_rows, :num_cols]`` is used and
            it must be finite.
        num_rows: scalar int32, rows in use (<= R).
        num_cols: scalar int32, columns in use (<= C).

    Returns:
        (R,) int32: the column assigned to each row, -1 for unassigned rows (rows beyond
        ``num_rows``, and ``num_rows - num_cols`` rows when there are more rows than columns).
    """
    cost = tf.cast(cost, tf.float64)
    num_rows = tf.convert_to_tensor(num_rows, tf.int32)
    num_cols = tf.convert_to_tensor(num_cols, tf.int32)
    max_rows, max_cols = cost.shape
    size = max(max_rows, max_cols)
    padded = tf.pad(cost, [[0, size - max_rows], [0, size - max_cols]])
    # SciPy transposes tall matrices so that every row gets a column.
    transpose = num_cols < num_rows
    work = tf.where(transpose, tf.transpose(padded), padded)
    col4row, row4col = _shortest_augmenting_path(
        work, tf.minimum(num_rows, num_cols), tf.maximum(num_rows, num_cols), size
    )
    return tf.where(transpose, row4col, col4row)[:max_rows]


def _shortest_augmenting_path(
    cost: tf.Tensor, num_rows: tf.Tensor, num_cols: tf.Tensor, size: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """SciPy's ``solve`` for a wide problem (num_rows <= num_cols) in a (size, size) buffer.

    Returns:
        col4row: (size,) int32 column of each row (-1 beyond num_rows).
        row4col: (size,) int32 row of each column (-1 if unassigned).
    """
    positions = tf.range(size)
    infinity = tf.constant(_INF, tf.float64)
    in_cols = positions < num_cols

    def greedy_rows(cur_row, u, v, col4row, row4col):
        """Rows from cur_row on whose SciPy search ends at its first step, all at once.

        A row's first step (min_val = 0, every column remaining, scanned from the last column
        to the first) picks the smallest free column among its minimum reduced costs if there
        is one; the search then ends there, u[row] += minimum and v is unchanged (v -= 0), so
        only row4col carries over to the next row. The run stops at the first row with no free
        minimum or with a minimum column taken by an earlier row of the run (there the
        earlier assignment could change its choice); that row gets the full search.
        """
        # The same float64 expression as the first search step (min_val = 0).
        reduced = ((tf.constant(0.0, tf.float64) + cost) - u[:, None]) - v[None, :]
        reduced = tf.where(in_cols[None, :], reduced, infinity)
        lowest = tf.reduce_min(reduced, axis=1)
        tied = in_cols[None, :] & tf.equal(reduced, lowest[:, None])
        free_tied = tied & tf.equal(row4col, -1)[None, :]
        choice = tf.reduce_min(tf.where(free_tied, positions[None, :], size), axis=1)
        pending = (positions >= cur_row) & (positions < num_rows)
        chosen = pending[:, None] & tf.equal(positions[None, :], choice[:, None])  # (S, S)
        taken_before = tf.cumsum(tf.cast(chosen, tf.int32), axis=0, exclusive=True) > 0
        conflict = tf.reduce_any(tied & taken_before, axis=1)
        greedy = pending & (choice < size) & ~conflict
        stop = tf.reduce_min(tf.where((positions >= cur_row) & ~greedy, positions, size))
        run = pending & (positions < stop)
        col4row = tf.where(run, choice, col4row)
        owner = tf.reduce_max(
            tf.where(chosen & run[:, None], positions[:, None], -1), axis=0
        )
        row4col = tf.where(owner >= 0, owner, row4col)
        u = tf.where(run, u + lowest, u)
        return stop, u, v, col4row, row4col

    def search_row(cur_row, u, v, col4row, row4col):
        """SciPy's ``augmenting_path`` + dual update + augmentation for one row."""

        def search_body(i, min_val, path_costs, path, rows_seen, cols_seen, remaining,
                        num_remaining, sink):
            rows_seen = rows_seen | tf.equal(positions, i)
            # Same association as the C++ ``minVal + cost[i][j] - u[i] - v[j]``.
            reduced = ((min_val + tf.gather(cost, i)) - tf.gather(u, i)) - v
            improve = in_cols & ~cols_seen & (reduced < path_costs)
            path_costs = tf.where(improve, reduced, path_costs)
            path = tf.where(improve, i, path)
            # SciPy scans ``remaining`` in order and takes the first minimum, replaced by a
            # later equal one whose column is free: i.e. the last free minimum if any, else
            # the first minimum.
            active = positions < num_remaining
            scan_cols = tf.where(active, remaining, 0)
            scan_costs = tf.where(active, tf.gather(path_costs, scan_cols), infinity)
            lowest = tf.reduce_min(scan_costs)
            tied = active & tf.equal(scan_costs, lowest)
            free = tied & tf.equal(tf.gather(row4col, scan_cols), -1)
            first_tied = tf.reduce_min(tf.where(tied, positions, size))
            last_free = tf.reduce_max(tf.where(free, positions, -1))
            index = tf.where(last_free >= 0, last_free, first_tied)
            col = tf.gather(remaining, index)
            owner = tf.gather(row4col, col)
            sink = tf.where(owner < 0, col, -1)
            i = tf.where(owner < 0, i, owner)
            cols_seen = cols_seen | tf.equal(positions, col)
            num_remaining = num_remaining - 1
            remaining = tf.where(
                tf.equal(positions, index), tf.gather(remaining, num_remaining), remaining
            )
            return (i, lowest, path_costs, path, rows_seen, cols_seen, remaining,
                    num_remaining, sink)

        # Filled in reverse, as SciPy does (a constant matrix gives the identity).
        remaining = tf.where(in_cols, num_cols - positions - 1, 0)
        _, min_val, path_costs, path, rows_seen, cols_seen, _, _, sink = tf.while_loop(
            lambda *state: state[-1] < 0,
            search_body,
            (
                cur_row,
                tf.constant(0.0, tf.float64),
                tf.fill([size], infinity),
                tf.fill([size], -1),
                tf.zeros([size], tf.bool),
                tf.zeros([size], tf.bool),
                remaining,
                num_cols,
                tf.constant(-1),
            ),
            maximum_iterations=size,
        )

        # Dual update, in SciPy's order and association.
        is_cur = tf.equal(positions, cur_row)
        u = tf.where(is_cur, u + min_val, u)
        previous = tf.gather(path_costs, tf.maximum(col4row, 0))
        u = tf.where(rows_seen & ~is_cur, u + (min_val - previous), u)
        v = tf.where(cols_seen, v - (min_val - path_costs), v)

        def augment_body(col, done, col4row, row4col):
            row = tf.gather(path, col)
            row4col = tf.where(tf.equal(positions, col), row, row4col)
            next_col = tf.gather(col4row, row)
            col4row = tf.where(tf.equal(positions, row), col, col4row)
            return next_col, tf.equal(row, cur_row), col4row, row4col

        _, _, col4row, row4col = tf.while_loop(
            lambda col, done, *_: ~done,
            augment_body,
            (sink, tf.constant(False), col4row, row4col),
            maximum_iterations=size,
        )
        return cur_row + 1, u, v, col4row, row4col

    def row_body(cur_row, u, v, col4row, row4col):
        greedy_state = greedy_rows(cur_row, u, v, col4row, row4col)
        # Most rows of a grouping problem take their unique acceptable person at once; the
        # batched step keeps the slow per-row search for the contested ones.
        return tf.cond(
            greedy_state[0] > cur_row,
            lambda: greedy_state,
            lambda: search_row(cur_row, u, v, col4row, row4col),
        )

    _, _, _, col4row, row4col = tf.while_loop(
        lambda cur_row, *_: cur_row < num_rows,
        row_body,
        (
            tf.constant(0),
            tf.zeros([size], tf.float64),
            tf.zeros([size], tf.float64),
            tf.fill([size], -1),
            tf.fill([size], -1),
        ),
    )
    return col4row, row4col
