import subprocess
import sys

import pytest

import ncii


def test_public_namespace_is_pinned():
    assert sorted(ncii.__all__) == sorted(
        [
            "SIGNAL_TYPES",
            "AccessDenied",
            "AlreadyExists",
            "CaseLocked",
            "IncompleteRequest",
            "WrongPin",
            "BankMatch",
            "EmptyMedia",
            "HashOptions",
            "HashResult",
            "ImportFailed",
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
            "__version__",
            "get_signal_type",
            "hash_bytes",
            "hash_file",
            "open_store",
        ]
    )
    for name in ncii.__all__:
        assert hasattr(ncii, name), name


def test_import_ncii_loads_the_store_only_when_asked():
    code = (
        "import sys, ncii; before = 'sqlalchemy' in sys.modules; ncii.Matcher; "
        "print(before, 'sqlalchemy' in sys.modules, ncii.Matcher.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "ncii.service.matching"]


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        ncii.no_such_thing  # noqa: B018


def test_pure_hashing_imports_no_database_web_or_cli_code():
    code = (
        "import sys, ncii.hashing, ncii.media, ncii.signals; "
        "bad = [m for m in ('sqlalchemy', 'alembic', 'typer', 'click', 'rich', 'fastapi') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
