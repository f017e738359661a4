"""``python -m dlp deploy``: segment images headless with a trained model (same code as the GUI)."""

from __future__ import annotations

import argparse

HELP = "segment images with a trained model (deploy net + weights + labels) into a folder"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files or folders (DICOM, NIfTI, PNG/JPEG/TIFF)")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", metavar="DEPLOY_PROTOTXT", help="the deploy net")
    model.add_argument("--train-net", metavar="TRAIN_VAL_PROTOTXT",
                       help="derive the deploy net from this training net")
    parser.add_argument("--weights", required=True, metavar="CAFFEMODEL",
                        help="trained weights (.caffemodel)")
    parser.add_argument("--labels", metavar="LABEL_TXT",
                        help="class names, background first (default: from the manifest)")
    parser.add_argument("--out", required=True, metavar="DIR", help="results folder")
    parser.add_argument("--manifest", metavar="MANIFEST",
                        help="the dataset's manifest.json: its preprocessing is applied")
    parser.add_argument("--gpu", type=int, metavar="N", help="run on CUDA device N")
    parser.add_argument("--evaluate", metavar="GT_DIR",
                        help="ground truth (masks or Sunnybrook contours): adds Dice/IoU/"
                             "Hausdorff per image and class, evaluation.csv, confusion matrix")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N",
                        help="slices per forward pass (default 8)")
    parser.add_argument("--per-file", action="store_true",
                        help="segment every DICOM file on its own instead of grouping series")


def run(args: argparse.Namespace) -> int:
    import sys

    from dlp.deploy.batch import run_batch
    from dlp.deploy.inputs import collect_inputs
    from dlp.deploy.session import InferenceSession
    from dlp.progress import terminal_progress

    device = "cpu" if args.gpu is None else f"cuda:{args.gpu}"
    items = collect_inputs(args.inputs, group_series=not args.per_file)
    if not items:
        print("dlp deploy: no images found in the given inputs", file=sys.stderr)
        return 1
    session = InferenceSession.load(
        args.model, args.weights, args.labels, train_net=args.train_net,
        manifest=args.manifest, device=device, batch_size=args.batch_size,
    )
    print(f"model: {session.num_classes} classes ({', '.join(session.labels.names)}); "
          f"{session.size_policy()}")

    def on_result(result) -> None:
        if result.ok:
            line = f"ok      {result.item.name}"
            if result.scores is not None:
                pairs = zip(session.labels.names[1:], result.scores.dice[1:], strict=False)
                dice = ", ".join(f"{n}={d:.3f}" for n, d in pairs)
                line += f"  dice {dice}"
            print(line)
            for warning in (result.files.warnings if result.files else []):
                print(f"warning {result.item.name}: {warning}")
        else:
            print(f"FAILED  {result.item.name}: {result.error}")

    with terminal_progress("Segmenting", unit="input") as progress:
        report = run_batch(session, items, args.out, ground_truth=args.evaluate,
                           progress=progress, on_result=on_result)
    session.close()
    if report.evaluation is not None and report.evaluation.rows:
        mean, std = report.evaluation.summary("dice")
        for name, m, s in zip(session.labels.names[1:], mean[1:], std[1:], strict=False):
            print(f"dice {name}: {m:.4f} ± {s:.4f} over {len(report.evaluation.rows)} images")
    print(f"{len(report.succeeded)} of {report.total} inputs segmented; results in {args.out}")
    return 0 if not report.failures else 2
