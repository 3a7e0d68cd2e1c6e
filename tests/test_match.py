"""Upload hashes against a MatchIndex: dihedral, thresholds, low quality, exact digests."""

import io

from PIL import Image, ImageOps
from shared_data import VENDORED

from ncii import Signal, hash_bytes, hash_file
from ncii.match import MatchIndex, QueryOptions

PHOTO = VENDORED / "square-512x512.jpg"
OTHER = VENDORED / "rgb.jpeg"


def _bank(*paths) -> tuple[MatchIndex, dict[int, str]]:
    index = MatchIndex()
    names = {}
    for key, path in enumerate(paths, start=1):
        for signal in hash_file(path).signals:
            index.add(signal.type, signal.value, key * 10 + len(names))
        names[key] = path.name
    return index, names


def _reencoded(path, transform=None, quality=70) -> bytes:
    with Image.open(path) as image:
        image = image.convert("RGB")
        if transform:
            image = transform(image)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return buffer.getvalue()


def test_flipped_reencoded_copy_matches_through_dihedral():
    index = MatchIndex()
    pdq = hash_file(PHOTO).get("pdq")
    assert pdq is not None
    index.add("pdq", pdq.value, 1)
    upload = hash_bytes(_reencoded(PHOTO, ImageOps.mirror), name="upload.jpg")
    [hit] = index.search(upload)
    # Meta's naming: "flipy" reflects across the vertical axis (a left-right mirror).
    assert hit.key == 1 and hit.transform == "flipy" and hit.distance <= 31
    assert index.search(upload, QueryOptions(dihedral=False)) == []


def test_distinct_image_does_not_match_and_exact_copy_matches_every_signal():
    index = MatchIndex()
    for signal in hash_file(PHOTO).signals:
        index.add(signal.type, signal.value, 7)
    assert index.search(hash_file(OTHER)) == []
    hits = index.search(hash_file(PHOTO))
    assert {h.signal_type for h in hits} == {
        "pdq",
        "phash",
        "dhash",
        "ahash",
        "whash",
        "md5",
        "sha256",
    }
    assert all(h.distance == 0 and h.key == 7 for h in hits)


def test_reencoded_copy_misses_exact_digests_but_matches_pdq():
    index = MatchIndex()
    for signal in hash_file(PHOTO).signals:
        index.add(signal.type, signal.value, 7)
    hits = index.search(hash_bytes(_reencoded(PHOTO, quality=40)))
    types = {h.signal_type for h in hits}
    assert "pdq" in types and "md5" not in types and "sha256" not in types


def test_thresholds_low_quality_and_disabling():
    index = MatchIndex()
    base = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    near = f"{int(base, 16) ^ 0b111:064x}"  # 3 bits away
    index.add("pdq", base, 1)
    strict = QueryOptions(thresholds={"pdq": 2})
    assert index.search_signals([Signal("pdq", near, 100)], options=strict) == []
    assert len(index.search_signals([Signal("pdq", near, 100)])) == 1
    weak = Signal("pdq", near, 10)
    assert index.search_signals([weak]) == []
    assert len(index.search_signals([weak], options=QueryOptions(include_low_quality=True))) == 1
    index.set_active("pdq", 1, False)
    assert index.search_signals([Signal("pdq", near, 100)]) == []
