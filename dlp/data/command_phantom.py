"""``python -m dlp phantom``: write a synthetic Sunnybrook-layout cardiac MR dataset."""

from __future__ import annotations

import argparse

HELP = "write a synthetic cardiac MR dataset (DICOM + contours) in the Sunnybrook layout"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to write images/ and contours/ into")
    parser.add_argument("--cases", type=int, default=4, help="number of patients (default 4)")
    parser.add_argument("--slices", type=int, default=8,
                        help="short-axis slices per case, two cine frames each (default 8)")
    parser.add_argument("--size", type=int, default=256, help="image rows and columns")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing images/ and contours/ folders")


def run(args: argparse.Namespace) -> int:
    from dlp.data.phantom import generate_phantom
    from dlp.progress import terminal_progress

    with terminal_progress("Writing phantom", unit="image") as progress:
        phantom = generate_phantom(
            args.out, cases=args.cases, slices=args.slices, size=args.size, seed=args.seed,
            overwrite=args.overwrite, progress=progress,
        )
    print(f"wrote {phantom.image_count} images of {len(phantom.cases)} cases")
    print(f"  images:   {phantom.images_dir}")
    print(f"  contours: {phantom.contours_dir}  (case→series table: {phantom.series_table.name})")
    return 0
