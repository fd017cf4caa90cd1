"""Distribution strategies by name: 'default', 'mirrored' and 'multi_worker'.

'mirrored' uses every local GPU, or — on a machine without GPUs — splits the CPU into
`num_cpu_devices` logical devices so multi-replica training can be tested anywhere. Logical
devices must be configured before TensorFlow initialises its runtime, so call
`make_strategy` before any other TensorFlow op in the process.
"""

from __future__ import annotations

import tensorflow as tf
from absl import logging

STRATEGIES = ("default", "mirrored", "multi_worker")


def configure_cpu_devices(num_devices: int) -> list[tf.config.LogicalDevice]:
    """Splits the first physical CPU into `num_devices` logical devices (idempotent).

    Raises:
        RuntimeError: when the runtime is already initialised with a different split.
    """
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is None or len(current) != num_devices:
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices
            )
        except RuntimeError as error:
            raise RuntimeError(
                f"cannot split the CPU into {num_devices} logical devices: TensorFlow is "
                "already initialised in this process; call make_strategy() first."
            ) from error
    return tf.config.list_logical_devices("CPU")


def make_strategy(name: str = "default", *, num_cpu_devices: int = 0) -> tf.distribute.Strategy:
    """Builds a tf.distribute strategy.

    Args:
        name: 'default' (one device), 'mirrored' (all local GPUs, else CPU logical devices) or
            'multi_worker' (MultiWorkerMirroredStrategy configured from the TF_CONFIG env var).
        num_cpu_devices: for 'mirrored' on a machine without GPUs, how many logical CPU
            devices to create (0 → 2).

    Returns:
        The strategy; `strategy.num_replicas_in_sync` tells the replica count.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        devices = configure_cpu_devices(num_cpu_devices or 2)
        logging.info("MirroredStrategy over %d logical CPU devices", len(devices))
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes real checkpoints, summaries and metrics.

    Single-machine strategies have no cluster and are always chief. In a TF_CONFIG cluster the
    chief is the 'chief' task when there is one, else worker 0.
    """
    cluster, resolver = _cluster(strategy)
    if not cluster:
        return True
    if "chief" in cluster:
        return resolver.task_type == "chief"
    return resolver.task_type in (None, "worker") and (resolver.task_id or 0) == 0


def _cluster(strategy: tf.distribute.Strategy) -> tuple[dict, object]:
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return cluster, resolver


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Machines (processes) taking part: 'chief' + 'worker' tasks, 1 without a cluster."""
    cluster, _ = _cluster(strategy)
    count = sum(len(cluster.get(task_type, ())) for task_type in ("chief", "worker"))
    return max(count, 1)


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """Index of this worker among `num_workers` (0 on single-machine strategies).

    Numbered like MultiWorkerMirroredStrategy's `id_in_cluster`: the 'chief' task is 0 and
    'worker' i is i + 1 when there is a chief, i otherwise. Used as the input pipeline id.
    """
    cluster, resolver = _cluster(strategy)
    if not cluster:
        return 0
    if resolver.task_type == "chief":
        return 0
    return int(resolver.task_id or 0) + (1 if "chief" in cluster else 0)
