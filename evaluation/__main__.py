"""``python -m evaluation QUESTIONS [...]``: evaluate, write reports, gate on floors.

Exit status: 0 done; 1 a ``--fail-under`` floor was missed; 2 bad usage, an invalid question
file, a missing corpus or bad settings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluation.importers import FORMATS
from evaluation.report import METRICS, fmt_delta, fmt_value


def _floor(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep:
        raise argparse.ArgumentTypeError(f"expected METRIC=VALUE, got {text!r}")
    if name not in METRICS:
        raise argparse.ArgumentTypeError(f"unknown metric {name!r}; one of: {', '.join(METRICS)}")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m evaluation",
        description="Ask a question set, score the answers (retrieval, answers, refusals, latency) and "
        "write report.json / report.md / report.html.",
    )
    p.add_argument(
        "questions",
        type=Path,
        help="question file: native YAML/JSONL, SQuAD 2.0, "
        "LlamaIndex LabelledRagDataset or Tonic Validate JSON",
    )
    p.add_argument("--format", choices=FORMATS, default=None, help="file format (default: detected)")
    p.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="documents to evaluate against, ingested into a temporary index "
        "(default: the set's corpus / imported documents, else the current index)",
    )
    p.add_argument("--out", type=Path, default=None, help="folder for the reports (default: reports/<name>)")
    p.add_argument("--baseline", type=Path, default=None, help="an earlier report.json to compare with")
    p.add_argument(
        "--fail-under",
        type=_floor,
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="exit 1 when METRIC is below VALUE (or above it, for latencies and error_rate); repeatable",
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N questions")
    p.add_argument(
        "--concurrency", type=int, default=2, metavar="N", help="questions asked at once (default 2)"
    )
    p.add_argument("--no-judge", action="store_true", help="skip the LLM judge in openai mode")
    return p


def check_floors(summary: dict[str, float | None], floors: list[tuple[str, float]]) -> list[str]:
    """The floors missed, as readable lines. Lower-is-better metrics (latency, errors) are ceilings;
    a metric that was not measured misses its floor (a gate must not pass silently)."""
    missed = []
    for name, floor in floors:
        value = summary.get(name)
        info = METRICS[name]
        if value is None:
            missed.append(f"{name}: not measured by this question set (floor {floor:g})")
        elif info.higher_is_better and value < floor:
            missed.append(f"{name} = {fmt_value(name, value)} is below the floor {floor:g}")
        elif not info.higher_is_better and value > floor:
            missed.append(f"{name} = {fmt_value(name, value)} is above the ceiling {floor:g}")
    return missed


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    if args.concurrency < 1:
        print("error: --concurrency must be at least 1", file=sys.stderr)
        return 2

    import kb  # noqa: F401  (telemetry off before the libraries load)
    from evaluation.importers import load_question_set
    from evaluation.questions import QuestionFileError
    from evaluation.report import load_report
    from evaluation.runner import run_evaluation
    from kb.settings import ConfigError, load_settings

    try:
        loaded = load_question_set(args.questions, args.format)
        baseline = load_report(args.baseline) if args.baseline else None
        settings = load_settings()
    except QuestionFileError as exc:
        print(f"invalid question file:\n{exc}", file=sys.stderr)
        return 2
    except (ValueError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.corpus is not None and not args.corpus.is_dir():
        print(f"error: --corpus {args.corpus} is not a folder", file=sys.stderr)
        return 2
    out = args.out or Path("reports") / _safe(loaded.questions.name or args.questions.stem)

    from tqdm import tqdm

    bar = tqdm(
        total=len(loaded.questions.limited(args.limit).questions),
        unit="q",
        desc="evaluating",
        file=sys.stderr,
        disable=None,
    )

    def progress(done: int, total: int, qid: str) -> None:
        bar.update(1)
        bar.set_postfix_str(qid, refresh=False)

    try:
        report = run_evaluation(
            args.questions,
            settings,
            out_dir=out,
            fmt=args.format,
            corpus=args.corpus,
            limit=args.limit,
            progress=progress,
            concurrency=args.concurrency,
            baseline=baseline,
            judge=False if args.no_judge else None,
            loaded=loaded,
        )
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        bar.close()

    print(summary_table(report))
    for kind, path in report.paths.items():
        print(f"{kind:>4}: {path}")
    missed = check_floors(report.summary, args.fail_under)
    for line in missed:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if missed else 0


def summary_table(report) -> str:
    c = report.counts
    lines = [
        f"{report.name}: {c['questions']} questions ({c['unanswerable']} unanswerable), {report.mode} mode, "
        f"corpus {report.corpus.get('documents')} docs / {report.corpus.get('chunks')} chunks, "
        f"{report.wall_s:.1f} s"
    ]
    base = {row["metric"]: row for row in (report.baseline or {}).get("rows", [])}
    for name in METRICS:
        value = report.summary.get(name)
        if value is None:
            continue
        line = f"  {name:<28} {fmt_value(name, value):>10}"
        row = base.get(name)
        if row and row["delta"] is not None:
            line += f"  {fmt_delta(name, row['delta']):>9}" + ("  REGRESSION" if row["regression"] else "")
        lines.append(line)
    return "\n".join(lines)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name).strip("-") or "evaluation"


if __name__ == "__main__":
    sys.exit(main())
