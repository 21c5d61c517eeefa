"""`faceproof` command line: compare, models, calibrate, eval verify, eval pad.

Exit codes (a documented contract, see README):
    0  success; for `compare A B`, the faces match
    1  `compare A B`: the faces do not match
    2  usage error, or an unreadable CSV / labels file
    3  an image is unusable (reason code printed): empty, corrupt, no face, face too small, ...
    4  server-side failure: a model is missing or fails its SHA-256 check, bad calibration
Errors are printed as one line (or one JSON object with --json), never as a traceback.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from faceproof.errors import DataFileError, FaceproofError, InputError
from faceproof.reasons import ReasonCode

__all__ = ["main"]

EXIT_MATCH, EXIT_NO_MATCH, EXIT_USAGE, EXIT_INPUT, EXIT_SERVICE = 0, 1, 2, 3, 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceproof", description="Face authentication for identity proofing."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    cmp_ = sub.add_parser("compare", help="compare two face images (1:1)")
    cmp_.add_argument("images", nargs="*", metavar="IMAGE", help="two image files")
    cmp_.add_argument("--example", action="store_true", help="compare the bundled example")
    cmp_.add_argument(
        "--pairs", metavar="FILE", help="CSV with path_a,path_b columns ('-' = stdin)"
    )
    cmp_.add_argument("--json", action="store_true", help="print one JSON object")
    cmp_.add_argument("--jsonl", action="store_true", help="with --pairs: one JSON object per line")
    _add_model_options(cmp_)
    cmp_.set_defaults(handler=_compare)

    models = sub.add_parser("models", help="list the pinned models and check their SHA-256")
    models.add_argument("--json", action="store_true")
    models.add_argument("--no-verify", action="store_true", help="skip hashing the files")
    models.set_defaults(handler=_models)

    cal = sub.add_parser("calibrate", help="fit the matcher and its threshold for a target FMR")
    cal.add_argument("--labels", required=True, help="labels.csv with path,identity[,set,faces]")
    cal.add_argument("--fmr", type=float, default=1e-4, help="target FMR (default 1e-4)")
    cal.add_argument("--out", required=True, help="where to write the calibration JSON")
    cal.add_argument("--dataset", default="", help="dataset description for provenance")
    cal.add_argument("--recogniser-onnx", metavar="PATH", help="calibrate an operator recogniser")
    cal.add_argument("--recogniser-sha256", metavar="HEX")
    cal.set_defaults(handler=_calibrate)

    ev = sub.add_parser("eval", help="evaluation reports")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True)
    verify = ev_sub.add_parser("verify", help="FTE, AUC, EER, TAR@FMR and a DET plot")
    verify.add_argument("--labels", required=True)
    verify.add_argument("--out", default="out/eval", help="folder for report.json and det.png")
    _add_model_options(verify)
    verify.add_argument(
        "--folds", type=int, default=2, help="cross-validation folds by identity (1 = none)"
    )
    verify.set_defaults(handler=_eval_verify)
    pad = ev_sub.add_parser(
        "pad", help="presentation-attack detection: APCER per species, BPCER, DET (ISO 30107-3)"
    )
    pad.add_argument("--data", metavar="DIR", help="shared PAD folder (e.g. ../shared/data/pad)")
    pad.add_argument("--synthetic", type=int, default=5, metavar="N", help="seeds per clip kind")
    pad.add_argument("--bpcer-target", type=float, default=0.05, help="calibrate to this BPCER")
    pad.add_argument("--clip-seconds", type=float, default=3.0, help="generated clip length")
    pad.add_argument("--out", required=True, help="folder for report.json and det.png")
    pad.add_argument("--json", action="store_true", help="print the summary as JSON")
    pad.set_defaults(handler=_eval_pad)

    # Each domain registers its own commands; each sets `handler` like the ones above.
    from faceproof.cli import alternatives, documents, liveness, policy, service
    from faceproof.cli import verify as verify_cli

    alternatives.add_parsers(sub)
    documents.add_parsers(sub)
    liveness.add_parsers(sub)
    policy.add_parsers(sub)
    service.add_parsers(sub)
    verify_cli.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except FaceproofError as exc:
        return _report_error(exc, as_json=bool(getattr(args, "json", False)))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time flush of
        # stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_MATCH
    except _UsageError as exc:
        print(f"faceproof: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A bug of ours: one line for the user, the traceback only when asked for.
        if os.environ.get("FACEPROOF_DEBUG"):
            raise
        print(f"faceproof: internal error: {type(exc).__name__}", file=sys.stderr)
        return EXIT_SERVICE


def _report_error(exc: FaceproofError, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": exc.to_dict()}, ensure_ascii=False))
    else:
        which = exc.context.get("image")
        where = f"image {which.upper()} ({exc.context.get('path', '?')}): " if which else ""
        print(f"faceproof: {where}{exc.code.value}: {exc.detail}", file=sys.stderr)
    if isinstance(exc, DataFileError):
        return EXIT_USAGE
    return EXIT_INPUT if isinstance(exc, InputError) else EXIT_SERVICE


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calibration", metavar="FILE", help="calibration JSON (default: packaged)"
    )
    parser.add_argument(
        "--recogniser-onnx", metavar="PATH", help="opt-in: an operator-supplied ONNX recogniser"
    )
    parser.add_argument("--recogniser-sha256", metavar="HEX", help="its pinned SHA-256")


def _operator_model(args: argparse.Namespace) -> Any:
    from faceproof.models import operator_recogniser_spec

    path, digest = args.recogniser_onnx, args.recogniser_sha256
    if bool(path) != bool(digest):
        raise _UsageError("--recogniser-onnx and --recogniser-sha256 go together")
    return operator_recogniser_spec(path, digest) if path else None


class _UsageError(Exception):
    pass


def _comparer(args: argparse.Namespace, *, for_evaluation: bool = False) -> Any:
    from faceproof.comparison import FaceComparer
    from faceproof.faces.matcher import MatcherCalibration

    operator = _operator_model(args)
    if operator is not None and not args.calibration:
        raise _UsageError("an operator recogniser needs its own --calibration file")
    calibration = MatcherCalibration.load(args.calibration) if args.calibration else None
    # Labelled evaluation sets hold press photos with bystanders; their labels name the subject.
    return FaceComparer(calibration, operator_model=operator, allow_multiple_faces=for_evaluation)


def _compare(args: argparse.Namespace) -> int:
    if args.pairs:
        if args.images or args.example:
            print("faceproof: --pairs takes no image arguments", file=sys.stderr)
            return EXIT_USAGE
        return _compare_pairs(args)
    if args.example:
        if args.images:
            print("faceproof: --example takes no image arguments", file=sys.stderr)
            return EXIT_USAGE
        from faceproof.examples import example_pair

        images: list[Any] = list(example_pair())
        labels = ["example:astronaut", "example:astronaut-relit"]
    elif len(args.images) == 2:
        images = list(args.images)
        labels = list(args.images)
    else:
        print("faceproof: compare needs two images (or --example / --pairs)", file=sys.stderr)
        return EXIT_USAGE
    comparer = _comparer(args)
    try:
        result = comparer.compare(images[0], images[1])
    except InputError as exc:
        if exc.context.get("image") in ("a", "b"):
            exc.context["path"] = labels[0 if exc.context["image"] == "a" else 1]
        raise
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        _print_human(result, labels)
    return EXIT_MATCH if result.match else EXIT_NO_MATCH


def _print_human(result: Any, labels: list[str]) -> None:
    from faceproof.reasons import describe

    verdict = "MATCH" if result.match else "NO MATCH"
    print(f"{labels[0]}  vs  {labels[1]}")
    print(
        f"{verdict}  score {result.score:.3f}  threshold {result.threshold:.3f}  "
        f"(FMR target {result.fmr_target:g}; {result.details.path})"
    )
    for code in result.reasons:
        reason = describe(code)
        print(f"  - {code.value}: {reason.message_en} / {reason.message_ko}")


def _read_pairs(source: str) -> tuple[list[tuple[str, str]], Path]:
    """Rows of (path_a, path_b) as written, and the folder relative paths are resolved against:
    the CSV's own folder (as in the shared data's pairs.csv), or the working directory for stdin.
    """
    try:
        if source == "-":
            text: TextIO = io.StringIO(sys.stdin.read().removeprefix("\ufeff"))
            base = Path.cwd()
        else:
            # utf-8-sig: spreadsheet programs save CSV with a byte-order mark.
            text = Path(source).open(newline="", encoding="utf-8-sig")  # noqa: SIM115
            base = Path(source).resolve().parent
        with text:
            reader = csv.DictReader(text)
            if not reader.fieldnames or not {"path_a", "path_b"} <= set(reader.fieldnames):
                raise DataFileError(ReasonCode.LABELS_INVALID, "pairs CSV needs path_a,path_b")
            rows = [(r["path_a"] or "", r["path_b"] or "") for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(ReasonCode.LABELS_INVALID, f"cannot read pairs: {exc}") from exc
    return rows, base


def _compare_pairs(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from faceproof.comparison import TemplateCache

    rows, base = _read_pairs(args.pairs)
    comparer = _comparer(args)
    templates = TemplateCache(comparer, base)

    with Progress(console=_stderr_console(), transient=True) as progress:
        task = progress.add_task("comparing", total=len(rows))
        for path_a, path_b in rows:
            a, b = templates.get(path_a), templates.get(path_b)
            line: dict[str, Any] = {"path_a": path_a, "path_b": path_b}
            failed = a if isinstance(a, FaceproofError) else b
            if isinstance(failed, FaceproofError):
                line["error"] = {"code": failed.code.value, "message": failed.detail}
            else:
                assert not isinstance(a, FaceproofError)
                assert not isinstance(b, FaceproofError)
                result = comparer.compare_templates(a, b)
                line.update(score=round(result.score, 4), match=result.match)
            print(json.dumps(line, ensure_ascii=False), flush=True)
            progress.advance(task)
    return EXIT_MATCH


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _models(args: argparse.Namespace) -> int:
    from faceproof.models import REGISTRY, resolve_model_file

    rows = []
    status = EXIT_MATCH
    for spec in REGISTRY.values():
        row = {
            "id": spec.model_id,
            "task": spec.task,
            "runtime": spec.runtime,
            "source": f"{spec.source_package}=={spec.source_version}",
            "sha256": spec.sha256,
            "licence": spec.licence,
            "input": spec.input_spec,
            "accuracy": spec.accuracy_card,
        }
        if not args.no_verify:
            try:
                resolve_model_file(spec)
                row["verified"] = "ok"
            except FaceproofError as exc:
                row["verified"] = exc.code.value
                status = EXIT_SERVICE
        rows.append(row)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="faceproof models")
        # Ids and sources stay whole (readable, grep-able) at any terminal width; prose wraps.
        table.add_column("id", no_wrap=True, min_width=max(len(r["id"]) for r in rows))
        table.add_column("task")
        table.add_column("source", no_wrap=True, min_width=max(len(r["source"]) for r in rows))
        table.add_column("sha256", overflow="fold")
        table.add_column("licence", overflow="fold")
        table.add_column("verified", no_wrap=True)
        for row in rows:
            table.add_row(
                row["id"],
                row["task"],
                row["source"],
                row["sha256"][:16] + "…",
                row["licence"],
                row.get("verified", "-"),
            )
        Console().print(table)
    return status


def _progress_iter(label: str) -> Any:
    from rich.progress import track

    def wrap(it: Any) -> Iterator[int]:
        items = list(it)
        yield from track(items, description=label, console=_stderr_console(), transient=True)

    return wrap


def _calibrate(args: argparse.Namespace) -> int:
    from faceproof.comparison import FaceComparer
    from faceproof.evaluation.face_eval import fit_calibration, score_labelled_set
    from faceproof.faces.matcher import MatcherCalibration

    operator = _operator_model(args)
    if operator is not None:
        structure = MatcherCalibration.uncalibrated(operator.model_id, None)
    else:
        packaged = MatcherCalibration.load()
        structure = MatcherCalibration.uncalibrated(
            packaged.primary, packaged.secondary, flip=packaged.flip
        )
    comparer = FaceComparer(structure, operator_model=operator, allow_multiple_faces=True)
    _, _, scores = score_labelled_set(comparer, args.labels, _progress_iter("enrolling"))
    command = f"faceproof calibrate --labels {args.labels} --fmr {args.fmr:g} --out {args.out}"
    calibration = fit_calibration(
        comparer, scores, fmr_target=args.fmr, dataset=args.dataset or args.labels, command=command
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(calibration.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {
                "threshold": calibration.threshold,
                "fmr_target": calibration.fmr_target,
                "n_genuine": calibration.n_genuine,
                "n_impostor": calibration.n_impostor,
                "low_confidence": calibration.low_confidence,
                "note": calibration.note,
                "out": args.out,
            },
            ensure_ascii=False,
        )
    )
    return EXIT_MATCH


def _eval_verify(args: argparse.Namespace) -> int:
    from faceproof.evaluation.face_eval import run_face_evaluation
    from faceproof.evaluation.plots import plot_det

    comparer = _comparer(args, for_evaluation=True)
    evaluation = run_face_evaluation(
        comparer, args.labels, _progress_iter("enrolling"), folds=args.folds
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = evaluation.to_dict()
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot_det(evaluation.det, out / "det.png", title="faceproof DET (within-set pairs)")
    summary = {
        name: {k: per["all"][k] for k in ("eer", "auc", "tar_at_fmr", "fte_rate", "n_impostor")}
        for name, per in evaluation.reports.items()
    }
    print(
        json.dumps(
            {
                "out": str(out),
                "summary": summary,
                "second_opinion_rate": evaluation.second_opinion_rate,
                "median_ms_per_image": evaluation.median_ms_per_image,
                "cross_validation": evaluation.cross_validation,
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    return EXIT_MATCH


def _eval_pad(args: argparse.Namespace) -> int:
    from faceproof.evaluation.pad_eval import plot_pad_det, run_pad_evaluation

    if not 0.0 <= args.bpcer_target <= 1.0 or args.synthetic < 0 or args.clip_seconds < 1.0:
        raise _UsageError("need 0 <= --bpcer-target <= 1, --synthetic >= 0, --clip-seconds >= 1")
    report, by_eval = run_pad_evaluation(
        synthetic=args.synthetic,
        data=Path(args.data) if args.data else None,
        bpcer_target=args.bpcer_target,
        seconds=args.clip_seconds,
        progress=_progress_iter("scoring presentations"),
        say=lambda msg: print(f"faceproof: {msg}", file=sys.stderr),
    )
    if not by_eval:
        raise _UsageError("nothing to evaluate: give --synthetic N > 0 or --data DIR")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report["command"] = "faceproof eval pad " + " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in vars(args).items()
        if k in {"data", "synthetic", "bpcer_target", "clip_seconds", "out"} and v is not None
    )
    det = plot_pad_det(by_eval, out / "det.png")
    report["det_plot"] = det.name if det else None
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    summary = {
        name: {
            "apcer_per_species": {
                sp: v["apcer"] for sp, v in ev["operating_point"]["apcer_per_species"].items()
            },
            "apcer": ev["operating_point"]["apcer"],
            "bpcer_by_source": {
                s: v["bpcer"] for s, v in ev["operating_point"]["bpcer_by_source"].items()
            },
            "non_response": {sp: c["non_response"] for sp, c in ev["counts"].items()},
            "calibrated_threshold": (ev["calibrated"] or {}).get("threshold"),
        }
        for name, ev in report["evaluations"].items()
    }
    if args.json:
        print(json.dumps({"out": str(out), "summary": summary}, ensure_ascii=False, indent=2))
    else:
        for name, s in summary.items():
            print(f"{name}: APCER (max over species) {s['apcer']}, BPCER {s['bpcer_by_source']}")
            print(f"  per species {s['apcer_per_species']}; non-response {s['non_response']}")
            print(f"  threshold for BPCER <= {args.bpcer_target:g}: {s['calibrated_threshold']}")
        print(f"report: {out / 'report.json'}")
    return EXIT_MATCH


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
