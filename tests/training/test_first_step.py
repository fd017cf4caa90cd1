"""The first training step (tracing, tens of seconds on a CPU) says what it is doing."""

from __future__ import annotations

import logging
import time

import tensorflow as tf

from associative_embedding.training import trainer as trainer_lib


def test_needs_tracing_until_the_first_call():
    step = tf.function(lambda x: x + 1)
    assert trainer_lib._needs_tracing(step)
    step(tf.constant(1))
    assert not trainer_lib._needs_tracing(step)
    assert not trainer_lib._needs_tracing(lambda x: x)  # a plain function is never traced


def test_first_step_notice_announces_repeats_and_reports_the_time(caplog):
    with caplog.at_level(logging.INFO), trainer_lib._first_step_notice(every_seconds=0.05):
        time.sleep(0.3)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0].startswith("tracing the training step")
    still = [message for message in messages if message.startswith("still tracing")]
    assert len(still) >= 2
    assert messages[-1].startswith("first step done in 0.")
    # The notices stop with the step.
    count = len(caplog.records)
    time.sleep(0.15)
    assert len(caplog.records) == count
