"""Synthetic datasets written as real COCO datasets, so training and evaluation need no download.

Two generators share one loop (``writer``: a seeded generator per image, the split's image
files and progress bar, spread over worker processes): synthetic *people*
(``generate_synthetic_dataset``: articulated stick figures in crowds with COCO keypoints;
``pose``, ``appearance``, ``figure``, ``render``, ``background`` and ``scene`` draw them,
``people`` writes the COCO JSON, ``statistics`` measures how crowded a keypoint dataset is)
and synthetic *shapes* (``shapes``: discs, squares and triangles that touch and occlude, for
instance segmentation). The names below are the people generator's; the shapes generator's are
re-exported too, except its ``DEFAULT_SPLITS`` and ``DEFAULT_IMAGE_SIZE``, which differ from
the people's: take them from ``shapes``.
"""

from associative_embedding.data.synthetic import shapes
from associative_embedding.data.synthetic.appearance import (
    sample_appearance as _sample_appearance,  # internal, exercised by the tests
)
from associative_embedding.data.synthetic.config import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_SPLITS,
    SyntheticConfig,
)
from associative_embedding.data.synthetic.figure import FACE_LABEL_MIN_COSINE
from associative_embedding.data.synthetic.figure import (
    Figure as _Figure,  # internal, exercised by the tests
)
from associative_embedding.data.synthetic.figure import (
    build_figure as _build_figure,  # internal, exercised by the tests
)
from associative_embedding.data.synthetic.people import (
    annotation_path,
    coco_person_category,
    generate_synthetic_dataset,
    scene_annotations,
)
from associative_embedding.data.synthetic.pose import NUM_JOINTS
from associative_embedding.data.synthetic.pose import (
    LimbAngles as _LimbAngles,  # internal, exercised by the tests
)
from associative_embedding.data.synthetic.pose import (
    Pose as _Pose,  # internal, exercised by the tests
)
from associative_embedding.data.synthetic.scene import (
    SyntheticPerson,
    SyntheticScene,
    render_scene,
)
from associative_embedding.data.synthetic.shapes import (
    SHAPES_CATEGORIES,
    ShapeInstance,
    ShapesConfig,
    ShapesDataset,
    ShapesScene,
    ShapesStatistics,
    generate_synthetic_shapes,
    render_shapes_scene,
    shapes_annotation_path,
    shapes_statistics_path,
    touching_pairs,
)
from associative_embedding.data.synthetic.statistics import (
    SyntheticStatistics,
    annotated_heights,
    compute_statistics,
)
from associative_embedding.data.synthetic.writer import (
    SyntheticImageError,
    SyntheticSplit,
    image_rng,
)

__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "DEFAULT_SPLITS",
    "FACE_LABEL_MIN_COSINE",
    "NUM_JOINTS",
    "SHAPES_CATEGORIES",
    "ShapeInstance",
    "ShapesConfig",
    "ShapesDataset",
    "ShapesScene",
    "ShapesStatistics",
    "SyntheticConfig",
    "SyntheticImageError",
    "SyntheticPerson",
    "SyntheticScene",
    "SyntheticSplit",
    "SyntheticStatistics",
    "_Figure",
    "_LimbAngles",
    "_Pose",
    "_build_figure",
    "_sample_appearance",
    "annotated_heights",
    "annotation_path",
    "coco_person_category",
    "compute_statistics",
    "generate_synthetic_dataset",
    "generate_synthetic_shapes",
    "image_rng",
    "render_scene",
    "render_shapes_scene",
    "scene_annotations",
    "shapes",
    "shapes_annotation_path",
    "shapes_statistics_path",
    "touching_pairs",
]
