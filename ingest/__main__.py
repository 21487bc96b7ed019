"""``python -m ingest [PATH ...]``: bring the index in line with the corpus folder.

``python -m ingest --watch [PATH ...]`` stays running and ingests what changes under the paths
(default: the corpus and uploads folders) as it changes, printing a report per batch, until
Ctrl-C (``ingest.watch``).

Exit status: 0 nothing failed, 1 at least one file failed (or ``--delete`` named nothing
indexed, or ``--check`` found Chroma, keyword index and records out of step), 2 bad usage or
configuration (or another ingest holding the lock).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from ingest.report import IngestReport


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Index documents incrementally: unchanged files are skipped, changed files "
        "replace their chunks, files gone from a scanned folder leave the index.",
    )
    p.add_argument("paths", nargs="*", help="files or folders inside the corpus dir (default: all of it)")
    p.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    p.add_argument("--rebuild", action="store_true", help="drop the index and embed everything again")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--list", action="store_true", help="list indexed documents and exit")
    p.add_argument(
        "--watch",
        action="store_true",
        help="keep running: ingest new, changed and removed files under the paths (default: the corpus "
        "and uploads folders) as they change, until Ctrl-C; changes made before it started need a "
        "plain run",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="compare the chunk ids of Chroma, the keyword index and the record manager, and exit",
    )
    p.add_argument(
        "--repair", action="store_true", help="bring them back in step (after --check found a gap)"
    )
    p.add_argument(
        "--delete",
        metavar="SOURCE",
        action="append",
        default=[],
        help="remove a document: its source as --list shows it, or the path of its file",
    )
    return p


def _print_report(report: IngestReport) -> None:
    width = max((len(f.source) for f in report.files), default=10)
    for f in report.files:
        detail = f.reason if f.status in ("skipped", "failed") else f"{f.chunks} chunks"
        print(f"  {f.status:<9} {f.source:<{width}}  {detail}")
    print(report.summary())


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.watch and (args.dry_run or args.rebuild or args.list or args.check or args.repair or args.delete):
        parser.error("--watch takes paths and --json only")
    import kb  # noqa: F401  (telemetry off before the libraries load)
    from ingest.pipeline import ingest
    from kb import ConfigError, IngestBusy, KnowledgeBase, load_settings

    try:
        settings = load_settings()
        store = KnowledgeBase(settings, check_model=not args.rebuild)
        if args.list:
            docs = store.list_documents()
            if args.json:
                print(json.dumps([d.to_dict() for d in docs], indent=2))
            for d in [] if args.json else docs:
                when = datetime.fromtimestamp(d.ingested_at).isoformat(sep=" ", timespec="seconds")
                print(f"{d.source}\t{d.chunks} chunks\t{when}\t{d.title}")
            return 0
        if args.delete:
            return _delete(store, args.delete)
        if args.check:
            return _check(store, args.json)
        if args.repair:
            return _repair(store)
        if args.watch:
            return _watch(store, args)
        report = _run(ingest, args, settings, store)
    except (ConfigError, IngestBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(report.to_json())
    else:
        _print_report(report)
    return 1 if report.failed else 0


def _watch(store, args) -> int:
    """Ingest changes until Ctrl-C (or SIGTERM): the first lets a batch being ingested finish, a
    second stops at once."""
    import signal
    import threading

    from ingest.watch import watch

    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    def on_ready(folders) -> None:
        print(f"watching {', '.join(map(str, folders))} (Ctrl-C to stop)", file=sys.stderr, flush=True)

    def on_report(report: IngestReport) -> None:
        if args.json:
            print(json.dumps(report.to_dict()), flush=True)
        else:
            _print_report(report)
            sys.stdout.flush()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        watch(
            args.paths or None, store.settings, store, on_report=on_report, on_ready=on_ready, stop_event=stop
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped watching", file=sys.stderr)
    return 0


def _delete(store, names: list[str]) -> int:
    """Remove each named document; 1 if any name matched nothing indexed (the others still go)."""
    from ingest.pipeline import delete_document, find_source
    from kb.store import source_path

    status = 0
    for name in names:
        source = find_source(store, name)
        if source is None:
            print(f"error: nothing indexed under {name!r} (see python -m ingest --list)", file=sys.stderr)
            status = 1
            continue
        deleted = delete_document(store, source)
        back = not source.startswith("uploads/") and source_path(store.settings, source) is not None
        note = " (its file is still in the corpus folder: the next ingest adds it again)" if back else ""
        print(f"removed {source}: {deleted} chunks{note}", file=sys.stderr)
    return status


def _check(store, as_json: bool) -> int:
    found = store.check()
    if as_json:
        print(json.dumps(found.to_dict(), indent=2))
        return 0 if found.ok else 1
    print(f"chunks in Chroma {found.chunks}, keyword rows {found.keyword_rows}, records {found.records}")
    for label, ids in (
        ("in Chroma only (not searchable by keywords)", found.only_in_chroma),
        ("in the keyword index only (never returned)", found.only_in_keywords),
        ("in Chroma without a record", found.without_record),
        ("records without a chunk", found.without_chunk),
    ):
        if ids:
            print(f"  {len(ids)} {label}, e.g. {', '.join(ids[:3])}")
    print("consistent" if found.ok else "NOT consistent: run python -m ingest --repair")
    return 0 if found.ok else 1


def _repair(store) -> int:
    found, redo = store.repair()
    if found.ok:
        print("consistent: nothing to repair")
        return 0
    print(
        f"repaired: {len(found.only_in_chroma)} keyword rows filled, {len(found.only_in_keywords)} stray "
        f"keyword rows and {len(found.without_record)} unrecorded chunks deleted, "
        f"{len(found.without_chunk)} records without a chunk dropped"
    )
    if redo:
        print("ingest these again to restore their missing chunks: " + ", ".join(redo))
    return 0


def _run(ingest, args, settings, store) -> IngestReport:
    """Ingest with a tqdm bar on stderr (it stays quiet when stderr is not a terminal)."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit="file", file=sys.stderr, disable=None, dynamic_ncols=True)

    def progress(done: int, total: int, source: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(source[-40:], refresh=True)

    try:
        return ingest(
            args.paths or None, settings, store, progress=progress, dry_run=args.dry_run, rebuild=args.rebuild
        )
    finally:
        bar.close()


if __name__ == "__main__":
    sys.exit(main())
