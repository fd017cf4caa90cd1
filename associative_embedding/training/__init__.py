"""Training: the task-generic loop and nothing task-specific.

``trainer.Trainer`` runs any task's model under a distribution strategy (``strategy``), with
exact-resume checkpoints and preemption handling (``checkpointing``), learning-rate schedules
(``schedules``), progress reporting (``progress``) and the config sections every task shares
(``config``). A task subclasses ``Trainer`` in ``tasks/`` and supplies its data, losses and
evaluation; ``tasks.registry.make_trainer`` picks the subclass from ``config.task``.
"""
