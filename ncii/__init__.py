"""ncii: stop the re-upload of non-consensual intimate imagery with perceptual hashes.

The public API; everything else is private to its module.
"""

from ncii.errors import (
    EmptyMedia,
    InvalidSignal,
    MediaError,
    MediaTooLarge,
    NciiError,
    UnknownSignalType,
    UnsupportedMedia,
)
from ncii.hashing import HashOptions, HashResult, MediaHashes, hash_bytes, hash_file
from ncii.signals import SIGNAL_TYPES, Signal, SignalType, get_signal_type
from ncii.signals.vpdq import VideoHashes, VpdqFrame

__version__ = "0.1.0"

__all__ = [
    "SIGNAL_TYPES",
    "EmptyMedia",
    "HashOptions",
    "HashResult",
    "InvalidSignal",
    "MediaError",
    "MediaHashes",
    "MediaTooLarge",
    "NciiError",
    "Signal",
    "SignalType",
    "UnknownSignalType",
    "UnsupportedMedia",
    "VideoHashes",
    "VpdqFrame",
    "__version__",
    "get_signal_type",
    "hash_bytes",
    "hash_file",
]
