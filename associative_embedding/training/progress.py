"""What the training loop tells the user while it runs: throughput, ETA, progress bar, and a
notice while the first step is still being traced and compiled."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from absl import logging

from associative_embedding.core import startup


class _ThroughputMeter:
    """Images per second over a sliding window, and the ETA to the last step."""

    def __init__(self, start_step: int, last_step: int, global_batch_size: int) -> None:
        self.last_step = last_step
        self.global_batch_size = global_batch_size
        self._window: list[tuple[float, int]] = [(time.monotonic(), start_step)]

    def update(self, step: int) -> None:
        self._window.append((time.monotonic(), step))
        del self._window[:-50]

    @property
    def steps_per_second(self) -> float:
        (t0, s0), (t1, s1) = self._window[0], self._window[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else 0.0

    @property
    def images_per_second(self) -> float:
        return self.steps_per_second * self.global_batch_size

    def eta_text(self) -> str:
        rate = self.steps_per_second
        if rate <= 0:
            return "?"
        seconds = int((self.last_step - self._window[-1][1]) / rate)
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _progress_bar(start: int, total: int) -> Any:
    """A tqdm bar when attached to a terminal (log lines otherwise)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    # A terminal that reports zero columns would make a dynamic bar empty at every refresh;
    # there the fixed width startup.start_tool gave tqdm applies.
    dynamic = startup.terminal_columns() > 0
    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=dynamic)


#: Seconds between the "still tracing" notices of the first step.
FIRST_STEP_NOTICE_SECONDS = 15.0


def _needs_tracing(step_fn: Callable) -> bool:
    """True before a tf.function's first call (which traces and optimises its graph)."""
    tracing_count = getattr(step_fn, "experimental_get_tracing_count", None)
    return tracing_count is not None and tracing_count() == 0


@contextlib.contextmanager
def _first_step_notice(every_seconds: float = FIRST_STEP_NOTICE_SECONDS) -> Iterator[None]:
    """Says that the first step is slow, and keeps saying so until it ends.

    The first step traces the training step into a graph, optimises it and fills the input
    pipeline's buffers: tens of seconds on a CPU, during which the loop prints nothing else.
    """
    start = time.monotonic()
    logging.info(
        "tracing the training step: the first step builds and optimises the graph and fills "
        "the input pipeline (tens of seconds on a CPU; a notice every %.0f s until it is done)",
        every_seconds,
    )
    done = threading.Event()

    def notify() -> None:
        while not done.wait(every_seconds):
            logging.info("still tracing the training step (%.0f s so far)",
                         time.monotonic() - start)

    notifier = threading.Thread(target=notify, name="first-step-notice", daemon=True)
    notifier.start()
    try:
        yield
    finally:
        done.set()
        notifier.join()
    logging.info("first step done in %.1f s; training", time.monotonic() - start)
