"""``python -m assistant "question"``: ask the knowledge base from a terminal.

Streams the answer, then lists its sources. ``--json`` prints the whole ``Answer`` instead.
Exit status: 0 answered, 1 declined or the model failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m assistant", description="Ask the project documents a question."
    )
    ap.add_argument("question", help="the question (quote it)")
    ap.add_argument("--json", action="store_true", help="print the Answer as JSON")
    ap.add_argument(
        "--history", metavar="FILE", help='earlier turns as JSON: [{"role": "user", "content": "..."}, ...]'
    )
    args = ap.parse_args(argv)

    import kb  # noqa: F401  (telemetry off before the libraries load)
    from assistant.core import Assistant
    from assistant.models import Answer
    from kb import ConfigError

    try:
        history = json.loads(Path(args.history).read_text(encoding="utf-8")) if args.history else []
        assistant = Assistant.from_settings()
    except (ConfigError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    answer: Answer | None = None
    for item in assistant.stream(args.question, history):
        if isinstance(item, Answer):
            answer = item
        elif not args.json:
            print(item, end="", flush=True)
    assert answer is not None
    if args.json:
        print(answer.model_dump_json(indent=2))
    else:
        print()
        shown = answer.citations or []
        if shown:
            print("\nSources:")
            for c in shown:
                print(f"  [{c.n}] {c.passage.location} ({c.passage.source})")
                if c.quote:
                    print(f"      “{c.quote}”")
        print(f"\n({answer.mode}{' ' + answer.model if answer.model else ''}, {answer.timings.total_s:.2f}s)")
    return 1 if answer.declined else 0


if __name__ == "__main__":
    sys.exit(main())
