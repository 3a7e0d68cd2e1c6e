import subprocess
import sys

import ncii


def test_public_namespace_is_pinned():
    assert sorted(ncii.__all__) == sorted(
        [
            "SIGNAL_TYPES",
            "EmptyMedia",
            "HashOptions",
            "HashResult",
            "VideoHashes",
            "VpdqFrame",
            "InvalidSignal",
            "MediaError",
            "MediaHashes",
            "MediaTooLarge",
            "NciiError",
            "Signal",
            "SignalType",
            "UnknownSignalType",
            "UnsupportedMedia",
            "__version__",
            "get_signal_type",
            "hash_bytes",
            "hash_file",
        ]
    )
    for name in ncii.__all__:
        assert hasattr(ncii, name), name


def test_pure_hashing_imports_no_database_web_or_cli_code():
    code = (
        "import sys, ncii.hashing, ncii.media, ncii.signals; "
        "bad = [m for m in ('sqlalchemy', 'alembic', 'typer', 'click', 'rich', 'fastapi') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
