"""Measuring re-upload detection: seeded transforms of originals, banked and matched.

Pure: Pillow, numpy and ncii's hashing and index code; no database, web or CLI code.
"""

from ncii.evaluation.transforms import TRANSFORMS, Transform, apply_transform

__all__ = ["TRANSFORMS", "Transform", "apply_transform"]
