"""ncii: stop the re-upload of non-consensual intimate imagery with perceptual hashes.

The public API; everything else is private to its module. The store-backed parts
(:class:`Matcher`, :func:`open_store`) load SQLAlchemy on first use, so hashing alone stays a
light import.
"""

from typing import TYPE_CHECKING, Any

from ncii.errors import (
    AccessDenied,
    AlreadyExists,
    CaseLocked,
    EmptyMedia,
    ImportFailed,
    IncompleteRequest,
    InvalidArgument,
    InvalidSignal,
    InvalidVpdq,
    MediaError,
    MediaTooLarge,
    NciiError,
    NotFound,
    StoreError,
    UnknownSignalType,
    UnsupportedMedia,
    VideoError,
    WrongPin,
)
from ncii.hashing import HashOptions, HashResult, MediaHashes, hash_bytes, hash_file
from ncii.match import MatchIndex, QueryOptions
from ncii.signals import SIGNAL_TYPES, Signal, SignalType, get_signal_type
from ncii.signals.vpdq import VideoHashes, VpdqFrame

if TYPE_CHECKING:
    from ncii.service.matching import BankMatch, Matcher
    from ncii.store.engine import Store, open_store

__version__ = "0.1.0"

_LAZY = {
    "BankMatch": "ncii.service.matching",
    "Matcher": "ncii.service.matching",
    "Store": "ncii.store.engine",
    "open_store": "ncii.store.engine",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ncii' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "SIGNAL_TYPES",
    "AccessDenied",
    "AlreadyExists",
    "BankMatch",
    "CaseLocked",
    "EmptyMedia",
    "HashOptions",
    "HashResult",
    "ImportFailed",
    "IncompleteRequest",
    "InvalidArgument",
    "InvalidSignal",
    "InvalidVpdq",
    "MatchIndex",
    "Matcher",
    "MediaError",
    "MediaHashes",
    "MediaTooLarge",
    "NciiError",
    "NotFound",
    "QueryOptions",
    "Signal",
    "SignalType",
    "Store",
    "StoreError",
    "UnknownSignalType",
    "UnsupportedMedia",
    "VideoError",
    "VideoHashes",
    "VpdqFrame",
    "WrongPin",
    "__version__",
    "get_signal_type",
    "hash_bytes",
    "hash_file",
    "open_store",
]
