"""The ingest report: what happened to every file, for the CLI, the staff page and tests."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["added", "updated", "unchanged", "removed", "skipped", "failed"]
STATUSES: tuple[Status, ...] = ("added", "updated", "unchanged", "removed", "skipped", "failed")


@dataclass
class FileOutcome:
    source: str  # path relative to its root (the id in the index), or the path as given
    status: Status
    chunks: int = 0  # chunks now indexed for this file (removed: chunks deleted)
    reason: str = ""  # why it was skipped or failed
    title: str = ""


@dataclass
class IngestReport:
    files: list[FileOutcome] = field(default_factory=list)
    wall_s: float = 0.0
    dry_run: bool = False
    chunks_embedded: int = 0  # chunks written to the index in this run

    @property
    def totals(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for f in self.files:
            counts[f.status] += 1
        return counts

    @property
    def failed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def changed(self) -> bool:
        return any(f.status in ("added", "updated", "removed") for f in self.files)

    def outcome(self, source: str) -> FileOutcome | None:
        return next((f for f in self.files if f.source == source), None)

    def to_dict(self) -> dict:
        return {
            "files": [asdict(f) for f in self.files],
            "totals": self.totals,
            "chunks_embedded": self.chunks_embedded,
            "wall_s": round(self.wall_s, 3),
            "dry_run": self.dry_run,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def summary(self) -> str:
        t = self.totals
        parts = ", ".join(f"{n} {s}" for s, n in t.items() if n)
        return f"{len(self.files)} files: {parts or 'nothing to do'}; {self.wall_s:.1f}s" + (
            " (dry run)" if self.dry_run else ""
        )
