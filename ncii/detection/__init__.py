"""Catching re-uploads plain PDQ misses: regions of an upload and variants of a bank entry.

Pure: numpy, scipy, Pillow and pdqhash; no database, web or CLI code.
"""

from ncii.detection.pipeline import (
    DEFAULT,
    PIPELINES,
    PLAIN,
    BankHash,
    DetectionPipeline,
    QueryHash,
    get_pipeline,
)

__all__ = [
    "DEFAULT",
    "PIPELINES",
    "PLAIN",
    "BankHash",
    "DetectionPipeline",
    "QueryHash",
    "get_pipeline",
]
