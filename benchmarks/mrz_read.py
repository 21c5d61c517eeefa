"""How often a passport's MRZ is read from a photographed page, and never wrongly.

    uv run python benchmarks/mrz_read.py [--pages 100] [--first-seed 100]

Seeds 100..199 (the default) are the pages the reader was tuned on; report also a held-out
range (`--first-seed 1000`).

Synthetic passports (documents/specimen.py, OCR-B MRZ), photographed (perspective, blur, noise,
JPEG), located and rectified as `document read` does, then `mrz_reader.read_mrz`: counts pages
read exactly, read wrongly (an MRZ accepted that differs from the truth) and not read (the
passport stays unverified), and the median time of the read: wall clock and CPU time of
this process (on a shared, loaded machine the CPU time is the steadier figure).
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import numpy as np

from faceproof.documents import DocumentType
from faceproof.documents.locate import locate_card, rectify
from faceproof.documents.mrz_reader import read_mrz
from faceproof.documents.read import TD3_SIZE
from faceproof.documents.specimen import photograph, render_specimen

TODAY = date(2026, 5, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=100)
    args = parser.parse_args()
    right = wrong = unread = 0
    times, cpu_times = [], []
    for seed in range(args.first_seed, args.first_seed + args.pages):
        spec = render_specimen(DocumentType.PASSPORT, seed=seed, today=TODAY)
        pixels = np.asarray(photograph(spec, seed=seed + 7).image)
        page = rectify(pixels, locate_card(pixels).corners, size=TD3_SIZE)
        started, cpu_started = time.perf_counter(), time.process_time()
        mrz = read_mrz(page, today=TODAY)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
        if mrz is None:
            unread += 1
        elif f"{mrz.line1}\n{mrz.line2}" == spec.fields["mrz"]:
            right += 1
        else:
            wrong += 1
    median_ms = 1000 * sorted(times)[len(times) // 2]
    median_cpu_ms = 1000 * sorted(cpu_times)[len(cpu_times) // 2]
    print(
        f"pages {args.pages} from seed {args.first_seed}: read exactly {right}, read wrongly "
        f"{wrong}, not read {unread}; median {median_ms:.0f} ms ({median_cpu_ms:.0f} ms CPU)"
    )


if __name__ == "__main__":
    main()
