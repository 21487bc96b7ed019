"""Deprecated alias: ``python -m assistant.evaluation`` is now ``python -m evaluation``.

Kept for one release so scripts keep working; it prints a note on stderr and runs the new
command. (The evaluation package sits above ``assistant``: it ingests corpora, which the
assistant itself never does.)
"""

import runpy
import sys

if __name__ == "__main__":
    print("note: `python -m assistant.evaluation` is deprecated; use `python -m evaluation`", file=sys.stderr)
    runpy.run_module("evaluation", run_name="__main__", alter_sys=True)
