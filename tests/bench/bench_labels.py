"""Labels per second into a PDF (and PNG pages), and decodes per second from PNG.

Run: .venv/bin/python tests/bench/bench_labels.py [--count 10000] [--decode 200]

Prints one line per measurement. Labels carry a GS1 DataMatrix and a QR of the Digital Link
URI (the `medtrace labels units` label); decoding reads 4 x 6 inch label pages at 203 dpi
(one DataMatrix and one QR each) with zxing-cpp then pyzbar, and parses the text.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from medtrace.labels import A4, LABEL_4X6, Label, LabelSheet, unit_label
from medtrace.protocol.identifiers import GS1Data, random_serial
from medtrace.scanners.decode import read_image

GTIN = "09521234000112"
BASE = "http://127.0.0.1:8000"


def _labels(count: int) -> Iterator[Label]:
    expiry = dt.date(2027, 6, 30)
    for _ in range(count):
        data = GS1Data(gtin=GTIN, serial=random_serial(), lot="L2611A", expiry=expiry)
        yield unit_label(data, base_url=BASE)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000, help="labels into the PDF")
    parser.add_argument("--png", type=int, default=480, help="labels into A4 PNG pages")
    parser.add_argument("--decode", type=int, default=200, help="4x6 PNG pages to decode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        before = _peak_mib()
        start = time.perf_counter()
        with LabelSheet(A4, pdf=out / "labels.pdf") as sheet:
            for label in _labels(args.count):
                sheet.add(label)
        took = time.perf_counter() - start
        size = (out / "labels.pdf").stat().st_size / 2**20
        print(
            f"PDF A4: {args.count} labels in {took:.1f} s = {args.count / took:.0f} labels/s; "
            f"{size:.1f} MiB file; peak RSS {before:.0f} -> {_peak_mib():.0f} MiB"
        )

        start = time.perf_counter()
        with LabelSheet(A4, png_dir=out / "a4", dpi=300) as sheet:
            for label in _labels(args.png):
                sheet.add(label)
        took = time.perf_counter() - start
        print(f"PNG A4 300 dpi: {args.png} labels in {took:.1f} s = {args.png / took:.0f} labels/s")

        with LabelSheet(LABEL_4X6, png_dir=out / "4x6", dpi=203) as sheet:
            for label in _labels(args.decode):
                sheet.add(label)
        pages = sheet.png_pages
        start = time.perf_counter()
        codes = sum(len(read_image(page)) for page in pages)
        took = time.perf_counter() - start
        assert codes == 2 * len(pages), f"read {codes} codes from {len(pages)} pages"
        print(
            f"decode 4x6 PNG 203 dpi: {len(pages)} pages, {codes} codes in {took:.1f} s = "
            f"{len(pages) / took:.1f} pages/s, {codes / took:.1f} codes/s"
        )


if __name__ == "__main__":
    main()
