"""The first training step (tracing, tens of seconds on a CPU) says what it is doing."""

from __future__ import annotations

import logging
import time

import tensorflow as tf

from associative_embedding.training import progress


def test_needs_tracing_until_the_first_call():
    step = tf.function(lambda x: x + 1)
    assert progress._needs_tracing(step)
    step(tf.constant(1))
    assert not progress._needs_tracing(step)
    assert not progress._needs_tracing(lambda x: x)  # a plain function is never traced


class _Collector(logging.Handler):
    """Keeps the records of the logger it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_first_step_notice_announces_repeats_and_reports_the_time():
    # Attached to absl's logger itself: other tests (tools run in-process) may change its level
    # or propagation, which would hide the records from pytest's caplog on the root logger.
    logger = logging.getLogger("absl")
    collector, previous_level = _Collector(), logger.level
    logger.addHandler(collector)
    logger.setLevel(logging.INFO)
    try:
        with progress._first_step_notice(every_seconds=0.05):
            time.sleep(0.3)
        messages = [record.getMessage() for record in collector.records]
        assert messages[0].startswith("tracing the training step")
        still = [message for message in messages if message.startswith("still tracing")]
        assert len(still) >= 2
        assert messages[-1].startswith("first step done in 0.")
        # The notices stop with the step.
        count = len(collector.records)
        time.sleep(0.15)
        assert len(collector.records) == count
    finally:
        logger.removeHandler(collector)
        logger.setLevel(previous_level)
