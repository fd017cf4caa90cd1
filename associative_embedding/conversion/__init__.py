"""Converters of the authors' released weights into `StackedHourglass` models."""
