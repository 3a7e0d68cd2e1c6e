"""AugLy's own re-upload augmentations as an extra check of the detection pipelines.

AugLy's unit tests ship one input photo (``dfdc_1.jpg``) and the output of each image
augmentation applied to it: real, third-party-made positives, unlike ``ncii eval``'s generated
ones. Each output is looked up against a bank of the three AugLy inputs (``dfdc_2`` and
``dfdc_3`` are other frames of other videos: a hit on them is a wrong match) under every
pipeline; the table gives the best distance to ``dfdc_1`` and whether it is a match at 31.

    .venv/bin/python bench/eval_augly.py [--data ../shared/data] > augly.md
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ncii.detection.pipeline import PIPELINES, decode_for_hashing

THRESHOLD = 31


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("NCII_SHARED_DATA", str(Path(__file__).parents[2] / "shared/data"))
    parser.add_argument("--data", default=default)
    parser.add_argument("--pipeline", action="append", default=None)
    args = parser.parse_args()
    base = Path(args.data) / "augly/augly/tests/assets/image"
    inputs = [base / "inputs" / f"dfdc_{i}.jpg" for i in (1, 2, 3)]
    outputs = sorted((base / "dfdc_expected_output").glob("*.png"))
    names = args.pipeline or ["pdq", "default"]
    found = {name: 0 for name in names}
    rows = []
    banks = {  # three entries: brute force gives every distance, not just those under 31
        name: [
            (key, int(h.value, 16))
            for key, path in enumerate(inputs)
            for h in PIPELINES[name].bank_hashes(decode_for_hashing(path.read_bytes()))
        ]
        for name in names
    }
    for output in outputs:
        pixels = decode_for_hashing(output.read_bytes())
        cells = []
        for name in names:
            queries = [
                q
                for r in PIPELINES[name].query_hashes(pixels)
                if r.quality >= 50
                for q in r.dihedral
            ]
            hits = [
                (key, (int(q, 16) ^ value).bit_count())
                for q in queries
                for key, value in banks[name]
            ]
            own = min((d for key, d in hits if key == 0), default=None)
            other = min((d for key, d in hits if key != 0), default=256)
            matched = own is not None and own <= THRESHOLD
            found[name] += matched
            wrong = " (wrong match)" if other <= THRESHOLD else ""
            shown = "low quality" if own is None else str(own)
            cells.append(f"{'**' if matched else ''}{shown}{'**' if matched else ''}{wrong}")
        rows.append(f"| {output.stem.removeprefix('test_')} | " + " | ".join(cells) + " |")
    print("| AugLy output | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    print("\n".join(rows))
    print(
        "| **matched at 31** | "
        + " | ".join(f"**{found[n]} of {len(outputs)}**" for n in names)
        + " |"
    )


if __name__ == "__main__":
    main()
