"""The paper's result tables (Newell, Huang, Deng 2017, Tables 1-5) as printed.

``TABLES`` / ``get_table(number)`` give a ``PaperTable``: caption, columns, the paper's numbers
as printed (percent for Tables 1 and 5, fractions for Tables 2-4), the other methods it compares
with, the evaluation setting of each of our rows (single- or multi-scale, with or without the
single-person refinement) and what the paper evaluated on (Tables 1-4 on test sets whose
annotations are withheld). ``tests/reproduce/test_paper_tables.py`` re-reads the numbers from
the paper's text when it is available.
"""

from __future__ import annotations

import dataclasses

#: The official multi-scale test set (the official pose-ae-train test.py), flip test on.
PAPER_MULTI_SCALES = (2.0, 1.0, 0.5)
SINGLE_SCALE = (1.0,)
#: pycocotools' ``COCOeval.stats`` order for keypoints.
COCO_STATS_ORDER = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")

TASK_MPII = "mpii"
TASK_COCO = "coco"
TASK_SEGMENTATION = "segmentation"

#: Row key of the single "Our method" row of Tables 1, 2, 3 and 5.
OURS = "ours"


@dataclasses.dataclass(frozen=True)
class Column:
    """One metric column.

    Attributes:
        name: the paper's column header.
        keys: metrics-dict keys that hold our value, the package's own key first; matched after
            normalisation (lower case, letters and digits only: 'AP_medium' == 'apmedium').
    """

    name: str
    keys: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PaperRow:
    """A row of another method, as the paper prints it (None: the paper prints '–')."""

    label: str
    values: tuple[float | None, ...]


@dataclasses.dataclass(frozen=True)
class OurRow:
    """An "Our method" row: the paper's numbers and how we evaluate it.

    Attributes:
        key: our name of the row ('ours', or 'single', 'single_refine', 'multi',
            'multi_refine' in Table 4); the ROW of ``--metrics=ROW=path``.
        label: the paper's label of the row.
        paper: the paper's numbers, one per column, in the paper's units.
        multi_scale: evaluated at the paper's multi-scale set (else at scale 1); pose only.
        refine: evaluated with the single-person refinement network; pose only.
    """

    key: str
    label: str
    paper: tuple[float, ...]
    multi_scale: bool = True
    refine: bool = True


@dataclasses.dataclass(frozen=True)
class PaperTable:
    """One of the paper's result tables.

    Attributes:
        number: 1-5.
        caption: the paper's caption.
        task: 'mpii', 'coco' or 'segmentation' (which evaluator fills our rows).
        columns: the metric columns.
        rows: the "Our method" rows.
        others: the other methods' rows the paper compares with.
        percent: the paper prints percent (our fractions are multiplied by 100).
        decimals: digits after the point, as printed.
        paper_split: what the paper evaluated on.
        annotations_public: whether that split's annotations are public (else only the
            benchmark's server can score it, and we evaluate on the split given instead).
        server: where the paper's split is scored when its annotations are withheld.
    """

    number: int
    caption: str
    task: str
    columns: tuple[Column, ...]
    rows: tuple[OurRow, ...]
    others: tuple[PaperRow, ...]
    percent: bool
    decimals: int
    paper_split: str
    annotations_public: bool
    server: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def row(self, key: str) -> OurRow:
        """The "Our method" row called ``key``.

        Raises:
            KeyError: naming the table's row keys.
        """
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(
            f"Table {self.number} has no row {key!r}; its rows are "
            f"{', '.join(row.key for row in self.rows)}."
        )


def _coco_columns() -> tuple[Column, ...]:
    aliases = {
        "AP": ("AP",),
        "AP50": ("AP50", "AP_50", "AP@0.5", "AP.5"),
        "AP75": ("AP75", "AP_75", "AP@0.75", "AP.75"),
        "APM": ("APM", "AP_medium", "AP_m"),
        "APL": ("APL", "AP_large", "AP_l"),
        "AR": ("AR",),
        "AR50": ("AR50", "AR_50", "AR@0.5", "AR.5"),
        "AR75": ("AR75", "AR_75", "AR@0.75", "AR.75"),
        "ARM": ("ARM", "AR_medium", "AR_m"),
        "ARL": ("ARL", "AR_large", "AR_l"),
    }
    return tuple(Column(name, keys) for name, keys in aliases.items())


_COCO_COLUMNS = _coco_columns()
_MPII_COLUMNS = (
    Column("Head", ("AP_head", "head")),
    Column("Shoulder", ("AP_shoulder", "shoulder")),
    Column("Elbow", ("AP_elbow", "elbow")),
    Column("Wrist", ("AP_wrist", "wrist")),
    Column("Hip", ("AP_hip", "hip")),
    Column("Knee", ("AP_knee", "knee")),
    Column("Ankle", ("AP_ankle", "ankle")),
    # evaluation/mpii_multi_person.py: 'AP' is the mean over the 14 scored joints (Total).
    Column("Total", ("AP", "AP_total", "total", "mAP")),
)
_SEGMENTATION_COLUMNS = (
    Column("IOU=0.5", ("mAPr@0.5", "mAPr_0.5", "IOU=0.5")),
    Column("IOU=0.7", ("mAPr@0.7", "mAPr_0.7", "IOU=0.7")),
)

_COCO_TEST_SERVER = (
    "the COCO keypoint evaluation server (submit keypoint_results.json of the test images)"
)


def _coco_test_table(
    number: int,
    caption: str,
    split: str,
    rows: tuple[OurRow, ...],
    others: tuple[PaperRow, ...] = (),
    columns: tuple[Column, ...] = _COCO_COLUMNS,
) -> PaperTable:
    """A COCO keypoint table on a test split (Tables 2-4).

    The paper prints fractions to three decimals, and only the COCO evaluation server scores
    these splits (their annotations are withheld), so those fields are the same in all three.

    Args:
        number: the table's number.
        caption: the paper's caption.
        split: the COCO split, 'test-std' or 'test-dev'.
        rows: the "Our method" rows.
        others: the other methods' rows.
        columns: the metric columns (default all ten COCO stats).
    """
    return PaperTable(
        number=number,
        caption=caption,
        task=TASK_COCO,
        columns=columns,
        rows=rows,
        others=others,
        percent=False,
        decimals=3,
        paper_split=f"MS-COCO {split}",
        annotations_public=False,
        server=_COCO_TEST_SERVER,
    )


TABLES: dict[int, PaperTable] = {
    1: PaperTable(
        number=1,
        caption="Table 1. Results (AP) on MPII Multi-Person.",
        task=TASK_MPII,
        columns=_MPII_COLUMNS,
        rows=(OurRow(OURS, "Our method", (92.1, 89.3, 78.9, 69.8, 76.2, 71.6, 64.7, 77.5)),),
        others=(
            PaperRow("Iqbal&Gall, ECCV16 [29]", (58.4, 53.9, 44.5, 35.0, 42.2, 36.7, 31.1, 43.1)),
            PaperRow(
                "Insafutdinov et al., ECCV16 [28]", (78.4, 72.5, 60.2, 51.0, 57.2, 52.0, 45.4, 59.5)
            ),
            PaperRow(
                "Insafutdinov et al., arXiv16a [45]",
                (89.4, 84.5, 70.4, 59.3, 68.9, 62.7, 54.6, 70.0),
            ),
            PaperRow(
                "Levinkov et al., CVPR17 [33]", (89.8, 85.2, 71.8, 59.6, 71.1, 63.0, 53.5, 70.6)
            ),
            PaperRow(
                "Insafutdinov et al., CVPR17 [27]", (88.8, 87.0, 75.9, 64.9, 74.2, 68.8, 60.5, 74.3)
            ),
            PaperRow("Cao et al., CVPR17 [6]", (91.2, 87.6, 77.7, 66.8, 75.4, 68.9, 61.7, 75.6)),
            PaperRow("Fang et al., arXiv17 [15]", (88.4, 86.5, 78.6, 70.4, 74.4, 73.0, 65.8, 76.7)),
        ),
        percent=True,
        decimals=1,
        paper_split="MPII Multi-Person test (1758 groups)",
        annotations_public=False,
        server="the MPII Human Pose benchmark (predictions are submitted to its authors)",
    ),
    2: _coco_test_table(
        2,
        "Table 2. Results on MS-COCO test-std, excluding systems trained with external data.",
        "test-std",
        rows=(
            OurRow(
                OURS, "Our method",
                (0.663, 0.865, 0.727, 0.613, 0.732, 0.715, 0.897, 0.772, 0.662, 0.787),
            ),
        ),
        others=(
            PaperRow(
                "CMU-Pose [6]",
                (0.611, 0.844, 0.667, 0.558, 0.684, 0.665, 0.872, 0.718, 0.602, 0.749),
            ),
            PaperRow(
                "G-RMI [42]",
                (0.643, 0.846, 0.704, 0.614, 0.696, 0.698, 0.885, 0.755, 0.644, 0.771),
            ),
        ),
    ),
    3: _coco_test_table(
        3,
        "Table 3. Results on MS-COCO test-dev, excluding systems trained with external data.",
        "test-dev",
        rows=(
            OurRow(
                OURS, "Our method",
                (0.655, 0.868, 0.723, 0.606, 0.726, 0.702, 0.895, 0.760, 0.646, 0.781),
            ),
        ),
        others=(
            PaperRow(
                "CMU-Pose [6]",
                (0.618, 0.849, 0.675, 0.571, 0.682, 0.665, 0.872, 0.718, 0.606, 0.746),
            ),
            PaperRow(
                "Mask-RCNN [25]",
                (0.627, 0.870, 0.684, 0.574, 0.711, None, None, None, None, None),
            ),
            PaperRow(
                "G-RMI [42]",
                (0.649, 0.855, 0.713, 0.623, 0.700, 0.697, 0.887, 0.755, 0.644, 0.771),
            ),
        ),
    ),
    4: _coco_test_table(
        4,
        "Table 4. Effect of multi-scale evaluation and single person refinement on MS-COCO "
        "test-dev.",
        "test-dev",
        columns=_COCO_COLUMNS[:5],
        rows=(
            OurRow("single", "single scale", (0.566, 0.818, 0.618, 0.498, 0.670),
                   multi_scale=False, refine=False),
            OurRow("single_refine", "single scale + refine", (0.628, 0.846, 0.692, 0.575, 0.706),
                   multi_scale=False, refine=True),
            OurRow("multi", "multi scale", (0.630, 0.857, 0.689, 0.580, 0.704),
                   multi_scale=True, refine=False),
            OurRow("multi_refine", "multi scale + refine", (0.655, 0.868, 0.723, 0.606, 0.726),
                   multi_scale=True, refine=True),
        ),
    ),
    5: PaperTable(
        number=5,
        caption="Table 5. Semantic instance segmentation results (mAP) on PASCAL VOC 2012 "
        "validation images.",
        task=TASK_SEGMENTATION,
        columns=_SEGMENTATION_COLUMNS,
        rows=(OurRow(OURS, "Our method", (35.1, 26.0), multi_scale=True, refine=False),),
        others=(
            PaperRow("SDS [22]", (49.7, 25.3)),
            PaperRow("Hypercolumn [23]", (60.0, 40.4)),
            PaperRow("CFM [11]", (60.7, 39.6)),
            PaperRow("MPA [36]", (61.8, None)),
            PaperRow("MNC [12]", (63.5, 41.5)),
        ),
        percent=True,
        decimals=1,
        paper_split="PASCAL VOC 2012 val (1,449 images)",
        annotations_public=True,
    ),
}


def get_table(number: int) -> PaperTable:
    """The paper's Table ``number``.

    Raises:
        ValueError: for a number other than 1-5.
    """
    try:
        return TABLES[int(number)]
    except (KeyError, ValueError):
        raise ValueError(f"the paper has Tables 1-5, got {number!r}.") from None

