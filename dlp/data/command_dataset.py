"""``python -m dlp dataset sunnybrook|folder|nifti``: build an LMDB segmentation dataset."""

from __future__ import annotations

import argparse

HELP = "build an LMDB segmentation dataset (DIGITS layout) from medical images"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="dataset folder to create")
    parser.add_argument("--val", type=float, default=10.0,
                        help="percent of cases for validation (default 10)")
    parser.add_argument("--test", type=float, default=0.0,
                        help="percent of cases for a test split (default 0)")
    parser.add_argument("--size", type=int, nargs="+", default=[256], metavar="N",
                        help="output size: N (square) or H W; 0 keeps the input size")
    parser.add_argument("--size-policy", choices=["resize", "pad_crop"], default="resize",
                        help="resize (labels by nearest neighbour) or centre pad/crop")
    parser.add_argument("--intensity", choices=["none", "zscore", "minmax", "window"],
                        default="minmax", help="per-image intensity normalisation")
    parser.add_argument("--window", type=float, nargs=2, metavar=("CENTER", "WIDTH"),
                        help="the fixed window for --intensity window")
    parser.add_argument("--channels", type=int, choices=[1, 3], default=1,
                        help="1 = gray; 3 = replicate gray to 3 channels (RGB-pretrained nets)")
    parser.add_argument("--bits", type=int, choices=[8, 16], default=8,
                        help="8 = uint8 Datums; 16 = keep full precision (float_data)")
    parser.add_argument("--encoding", choices=["png"], default=None,
                        help="store features PNG-compressed (8-bit only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the case split and order")
    parser.add_argument("--strict", action="store_true",
                        help="fail on the first unreadable or unmatched file")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes preparing slices, this one included (default: one "
                             "per idle core for a large build; 1 = this process only); the "
                             "dataset is the same either way")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    sunny = sub.add_parser("sunnybrook", help="Sunnybrook LV challenge layout (DICOM + contours)")
    sunny.add_argument("--images", required=True, help="folder holding the case image folders")
    sunny.add_argument("--contours", required=True, help="folder holding the contour folders")
    sunny.add_argument("--classes", choices=["endo", "endo,epi"], default="endo",
                       help="endo: background/LV cavity; endo,epi: + myocardium")
    sunny.add_argument("--series-table", help="CSV (case,series) or JSON overriding the "
                                              "built-in case→series table")
    _add_common(sunny)
    folder = sub.add_parser("folder", help="an images folder + a masks folder matched by name")
    folder.add_argument("--images", required=True)
    folder.add_argument("--masks", required=True)
    folder.add_argument("--class-names", help="comma-separated class names, background first")
    folder.add_argument("--case-pattern", help="regex taking the patient id from a file name "
                                               "(group 1), so patients are split, not files")
    _add_common(folder)
    nifti = sub.add_parser("nifti", help="NIfTI image/label volume pairs sliced into 2-D")
    nifti.add_argument("--images", required=True)
    nifti.add_argument("--labels", required=True)
    nifti.add_argument("--axis", choices=["x", "y", "z"], default="z",
                       help="slice perpendicular to this voxel axis (default z)")
    nifti.add_argument("--class-names", help="comma-separated class names, background first")
    _add_common(nifti)


def _size(values: list[int]) -> tuple[int, int] | None:
    from dlp.errors import InputError

    if values == [0]:
        return None
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) == 2:
        return (values[0], values[1])
    raise InputError(f"--size takes N or H W; got {' '.join(map(str, values))}")


def make_source(args: argparse.Namespace):
    from dlp.data.sources import FolderSource, NiftiSource, SunnybrookSource

    names = ([n.strip() for n in args.class_names.split(",")]
             if getattr(args, "class_names", None) else None)
    if args.source == "sunnybrook":
        return SunnybrookSource(args.images, args.contours, args.classes, args.series_table)
    if args.source == "folder":
        return FolderSource(args.images, args.masks, names, args.case_pattern)
    return NiftiSource(args.images, args.labels, args.axis, names)


def run(args: argparse.Namespace) -> int:
    import json

    from dlp.data.builder import REPORT_NAME, BuildOptions, build_dataset
    from dlp.data.preprocess import Preprocessing
    from dlp.progress import terminal_progress

    size = _size(args.size)
    prep = Preprocessing(
        size=size, size_policy=args.size_policy if size else "none",
        intensity=args.intensity,
        window=tuple(args.window) if args.window else None,
        channels=args.channels, bits=args.bits,
    )
    options = BuildOptions(preprocessing=prep, val_percent=args.val, test_percent=args.test,
                           seed=args.seed, strict=args.strict, encoding=args.encoding,
                           workers=args.workers)
    source = make_source(args)
    with terminal_progress(f"Building {args.source} dataset", unit="image") as progress:
        result = build_dataset(source, args.out, options, progress=progress)
    print(result.summary())
    manifest = result.manifest
    if manifest is not None:
        print(f"shape {manifest.shape} {manifest.dtype}, classes "
              f"{', '.join(manifest.classes)}; pixel frequencies "
              f"{json.dumps([round(f, 4) for f in manifest.class_pixel_frequencies])}")
        print(f"manifest: {manifest.path}; report: {result.out_dir / REPORT_NAME}")
    return 0
