"""Experiment configs: one file per paper-table row or local recipe (see each docstring)."""
