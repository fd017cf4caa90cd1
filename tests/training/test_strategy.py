"""Strategies: chief/worker roles from TF_CONFIG, and 2-replica training equal to 1-replica."""

from __future__ import annotations

import json
import types

import pytest
import tensorflow as tf

from associative_embedding.training import strategy as strategy_lib
from tests.training.subprocesses import run_script


def _cluster_strategy(monkeypatch, cluster: dict, task_type: str, task_id: int):
    """A stand-in exposing what the helpers read: a TF_CONFIG cluster resolver."""
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": task_type, "index": task_id}})
    )
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    return types.SimpleNamespace(cluster_resolver=resolver)


WORKERS = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
WITH_CHIEF = {"chief": ["127.0.0.1:3"], "worker": ["127.0.0.1:1", "127.0.0.1:2"]}


@pytest.mark.parametrize(
    ("cluster", "task_type", "task_id", "chief", "index", "workers"),
    [
        (WORKERS, "worker", 0, True, 0, 2),  # no chief task: worker 0 is the chief
        (WORKERS, "worker", 1, False, 1, 2),
        (WITH_CHIEF, "chief", 0, True, 0, 3),
        (WITH_CHIEF, "worker", 0, False, 1, 3),  # numbered after the chief
        (WITH_CHIEF, "worker", 1, False, 2, 3),
    ],
)
def test_roles_from_tf_config(monkeypatch, cluster, task_type, task_id, chief, index, workers):
    strategy = _cluster_strategy(monkeypatch, cluster, task_type, task_id)
    assert strategy_lib.is_chief(strategy) is chief
    assert strategy_lib.worker_index(strategy) == index
    assert strategy_lib.num_workers(strategy) == workers


def test_single_machine_strategy_is_the_only_worker():
    strategy = strategy_lib.make_strategy("default")
    assert strategy_lib.is_chief(strategy)
    assert strategy_lib.worker_index(strategy) == 0
    assert strategy_lib.num_workers(strategy) == 1
    with pytest.raises(ValueError, match="unknown strategy 'tpu'"):
        strategy_lib.make_strategy("tpu")


def test_mirrored_two_replicas_equal_one_replica():
    """Same global batch: same losses and same weights (<= 1e-4) after each of two steps."""
    completed = run_script(["tests/training/scripts/mirrored_step_check.py"], timeout=240)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    for single, mirrored in zip(result["single"], result["mirrored"], strict=True):
        assert set(single) == {"loss", "heatmap", "pull", "push"}
        for name, value in single.items():
            assert mirrored[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    assert result["steps_after_2"] == [2, 2]
    # The updates are real (Adam moves weights by ~lr = 1e-3 per step) and identical.
    assert min(result["max_weight_change"]) > 5e-4
    assert max(result["max_weight_difference"]) <= 1e-4
