"""Tasks: what the network is trained to do, each on the shared layers below.

``pose`` (multi-person pose), ``segmentation`` (instance segmentation) and ``refinement`` (the
single-person refinement network, built on pose) each own their config schema, inputs,
losses hookup, trainer, evaluation hook and predictor; ``registry`` maps ``config.task`` to
the task's trainer and schema. Tasks do not import each other, except refinement importing
pose (see ARCHITECTURE.md).

Importing this package imports ``registry``: every task is then registered, with its config
checks, before any of its modules is used, so a config is checked in full wherever it is read.
"""

from associative_embedding.tasks import registry

__all__ = ["registry"]
