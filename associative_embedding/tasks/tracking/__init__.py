"""Multi-person pose tracking (the paper's third application, space-time associative embedding).

The network predicts tags that are consistent over the frames of a clip, so one person keeps one
tag over time. `tracker` links the pose decoder's people of consecutive frames into tracks by
tag distance (`TagTracker`; `detections_from_decoder` gives each decoded person its mean tag),
with an overlap-only baseline (`OverlapTracker`) that matches by OKS or box IoU as classic pose
trackers do. Both score with `evaluation.tracking` (MOTA, IDF1, ID switches).
"""
