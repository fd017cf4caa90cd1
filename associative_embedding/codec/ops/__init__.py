"""TensorFlow building blocks of the in-graph codec: generic ops with no pose knowledge.

``linear_sum_assignment_tf`` (``codec.ops.linear_sum_assignment``) is SciPy's
``linear_sum_assignment`` in TensorFlow ops, used by the in-graph grouping decoder
(``codec.graph_grouping``).
"""

from associative_embedding.codec.ops.linear_sum_assignment import linear_sum_assignment_tf

__all__ = ["linear_sum_assignment_tf"]
