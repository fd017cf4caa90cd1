"""Fixtures of the training tests: a tiny synthetic dataset generated once per session."""

from __future__ import annotations

import pathlib

import pytest


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> pathlib.Path:
    """8 train and 2 val synthetic images of 96x96 (tiny_config's sizes), generated once."""
    from associative_embedding.data import synthetic

    root = tmp_path_factory.mktemp("synthetic")
    for split, num_images, seed in (("train", 8, 0), ("val", 2, 1)):
        synthetic.generate_synthetic_dataset(
            root, split=split, num_images=num_images, seed=seed, image_size=96,
            show_progress=False,
        )
    return root
