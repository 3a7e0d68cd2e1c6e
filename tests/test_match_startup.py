"""A one-file match starts cheaply (issue 19): the Matcher loads only the signal types that
can decide a match (PDQ, md5, sha256; a weak type only once a bank opted in), keeps a snapshot
at every size, and answers exactly as a full load does, on both engines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared_data import VENDORED, requires_shared, shared
from test_weak_hashes import BANKED, STAIRS, UNRELATED, _edited

from ncii.hashing import HashOptions, hash_file
from ncii.match import QueryOptions
from ncii.service.banks import create_bank, update_bank
from ncii.service.entries import NewEntry
from ncii.service.ingest import add_entries
from ncii.service.matching import Matcher
from ncii.store.engine import open_store

PHOTOS = [VENDORED / n for n in ("q0122.jpg", "q0746.jpg", "q2821.jpg", "rgb.jpeg")]
DECIDING = {"pdq", "md5", "sha256"}


def _bank(store, name: str, paths: list[Path], **thresholds: int) -> None:
    with store.begin() as session:
        create_bank(session, name, actor="test", match_thresholds=thresholds or None)
        add_entries(
            session,
            name,
            [
                NewEntry(h.signals, variants=h.pdq_variants)
                for h in (hash_file(p, options=HashOptions.for_bank()) for p in paths)
            ],
            actor="test",
        )


def _summary(matches) -> list[tuple]:
    return [
        (m.bank, m.entry_id, m.signal_type, m.distance, m.transform, m.variant, m.corroborated_by)
        for m in matches
    ]


def test_a_default_bank_loads_only_deciding_types_and_still_corroborates(store, tmp_path):
    _bank(store, "reports", [STAIRS, *PHOTOS[2:]])
    upload = hash_file(_edited(tmp_path, STAIRS, "brightness"), options=HashOptions.for_uploads())
    matcher = Matcher(store)
    assert matcher.types == DECIDING
    [match] = matcher.match(upload)
    assert match.signal_type == "pdq" and "phash" in match.corroborated_by
    assert matcher.types == DECIDING  # corroboration came from the entry's rows
    assert Matcher(store).match(upload, options=QueryOptions.plain_pdq()) == [
        # plain PDQ looks no weak hash up, so none corroborates
        type(match)(**{**_fields(match), "corroborated_by": ()})
    ]


def _fields(match) -> dict:
    return {name: getattr(match, name) for name in match.__dataclass_fields__}


@requires_shared
def test_a_bank_that_opted_in_still_matches_on_its_weak_hash(store):
    _bank(store, "partner", [shared(BANKED)], whash=0)
    _bank(store, "reports", [shared(BANKED)])
    upload = hash_file(shared(UNRELATED), options=HashOptions.for_uploads())
    matcher = Matcher(store)
    assert matcher.types == DECIDING  # weak types wait for a lookup that needs them
    found = matcher.match(upload)
    assert [(m.bank, m.signal_type, m.distance) for m in found] == [("partner", "whash", 0)]
    assert "whash" in matcher.types and "phash" not in matcher.types
    # --pipeline pdq never looks weak hashes up
    assert Matcher(store).match(upload, options=QueryOptions.plain_pdq()) == []


@requires_shared
def test_an_opt_in_made_elsewhere_reaches_a_running_matcher(store, store_url):
    _bank(store, "reports", [shared(BANKED)])
    upload = hash_file(shared(UNRELATED), options=HashOptions.for_uploads())
    matcher = Matcher(store, refresh_interval=0)
    assert matcher.match(upload) == []
    with open_store(store_url) as other, other.begin() as session:
        update_bank(session, "reports", actor="other", set_thresholds={"whash": 0})
    assert [(m.bank, m.signal_type) for m in matcher.match(upload)] == [("reports", "whash")]
    with open_store(store_url) as other, other.begin() as session:
        update_bank(session, "reports", actor="other", clear_thresholds=["whash"])
    assert matcher.match(upload) == []


def test_a_small_store_uses_a_snapshot_when_asked(store, tmp_path):
    _bank(store, "reports", PHOTOS[:1])  # 21 hashes
    folder = tmp_path / "snap"
    assert not Matcher(store, snapshot=folder).loaded_from_snapshot
    assert (folder / "manifest.json").is_file()
    again = Matcher(store, snapshot=folder, warm=False)
    assert again.loaded_from_snapshot and again.types == DECIDING


def test_a_match_through_a_snapshot_equals_one_without(store, tmp_path):
    _bank(store, "reports", [STAIRS, *PHOTOS[:1]])
    _bank(store, "partner", PHOTOS[2:], phash=8)
    folder = tmp_path / "snap"
    Matcher(store, snapshot=folder)
    uploads = [
        hash_file(_edited(tmp_path, path, kind), options=HashOptions.for_uploads())
        for path in (STAIRS, *PHOTOS)
        for kind in ("brightness", "crop_5", "flip")
    ]
    plain, cached = Matcher(store), Matcher(store, snapshot=folder, warm=False)
    assert cached.loaded_from_snapshot
    answers = 0
    for options in (QueryOptions(), QueryOptions.plain_pdq()):
        for upload in uploads:
            expected = _summary(plain.match(upload, options=options))
            assert _summary(cached.match(upload, options=options)) == expected
            answers += bool(expected)
    assert answers >= 8  # the uploads really match, so equality says something


SNAPSHOT_MATCH = """
import sys
from ncii.hashing import hash_file
from ncii.match import QueryOptions
from ncii.service.matching import Matcher
from ncii.store.engine import open_store

url, folder, photo = sys.argv[1:]
with open_store(url) as store:
    matcher = Matcher(store, snapshot=__import__("pathlib").Path(folder), warm=False)
    found = matcher.match(hash_file(photo), options=QueryOptions.plain_pdq())
kinds = ",".join(sorted(m.signal_type for m in found))
print(matcher.loaded_from_snapshot, kinds, "ncii._mih_kernel" in sys.modules)
"""


def test_a_one_file_lookup_from_a_snapshot_does_not_load_the_search_kernel(
    store, store_url, tmp_path
):
    """numba's kernel costs half a second to load; a handful of lookups costs milliseconds."""
    _bank(store, "reports", PHOTOS[:2])
    folder = tmp_path / "snap"
    Matcher(store, snapshot=folder)
    run = subprocess.run(
        [sys.executable, "-c", SNAPSHOT_MATCH, store_url, str(folder), str(PHOTOS[0])],
        capture_output=True,
        text=True,
        check=True,
    )
    # the very file: its PDQ and both digests match
    assert run.stdout.split() == ["True", "md5,pdq,sha256", "False"], run.stderr
