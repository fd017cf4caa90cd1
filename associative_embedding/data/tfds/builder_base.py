"""Base class of the pose builders: a GeneratorBasedBuilder that works when imported from a package.

TFDS 4.9's `DatasetBuilder.code_path` touches `importlib_resources` for any builder defined in
a package, a module TFDS only declares as a dependency for Python < 3.9, so on Python 3.11
without it every builder of this package would fail with ModuleNotFoundError. The path is only
used to find a checksums file (these builders download nothing), and TFDS's own fallback,
`inspect.getfile`, gives the same answer for a regular package, so the base class uses that.
"""

from __future__ import annotations

import inspect

import tensorflow_datasets as tfds
from etils import epath

__all__ = ["PoseBuilder"]


class PoseBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """GeneratorBasedBuilder with a `code_path` that needs no `importlib_resources`."""

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path | None:
        try:
            return epath.Path(inspect.getfile(cls))
        except (TypeError, OSError):
            return None
