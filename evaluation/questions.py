"""Question sets: the native YAML / JSON Lines format, validated with file, line and field at fault.

A YAML (or JSON) file holds one mapping::

    name: innaxe                 # optional
    corpus: ../corpus            # optional, relative to this file
    questions:
      - id: partners             # optional; generated if missing
        question: Which organisations are in the INNAXE consortium?
        history: []              # optional: earlier turns, [{role, content}]
        reference_answer: ...    # optional: a string, or a list of acceptable answers
        answer_must_include: [["BIOCAT"], ["six", "6"]]  # every group needs one alternative
        sources: [innaxe.txt]    # optional: documents that hold the answer
        reference_contexts: [...]  # optional: passages that hold the answer
        answerable: true         # default true; false = the assistant must decline
        standalone: ...          # optional, for follow-ups: the question written on its own

A JSON Lines file (``.jsonl``) has one question object per line; a line without ``question``
that holds only ``name`` / ``corpus`` sets those for the whole file.

Line numbers come from YAML's node marks (JSON is YAML, so the same walk serves both), so a
mistake is reported as ``evals/x.yaml:12: questions[3].answer_must_include: ...``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator


class QuestionFileError(Exception):
    """A question file cannot be used; ``problems`` are (line, field, message) triples."""

    def __init__(self, path: Path | str, problems: list[tuple[int | None, str, str]]) -> None:
        self.path = str(path)
        self.problems = problems
        lines = [
            f"{self.path}{f':{line}' if line else ''}: {field + ': ' if field else ''}{msg}"
            for line, field, msg in problems
        ]
        super().__init__("\n".join(lines))

    @property
    def line(self) -> int | None:
        return self.problems[0][0] if self.problems else None

    @property
    def field(self) -> str:
        return self.problems[0][1] if self.problems else ""


def _str_or_list(value: Any) -> Any:
    """Accept one string where a list of strings is expected; YAML numbers become strings."""
    if value is None:
        return []
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list):
        return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value]
    return value


StrList = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_str_or_list)]


class Turn(BaseModel):
    """One earlier turn of the conversation, as the assistant's ``history`` takes it."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, min_length=1)
    question: str = Field(min_length=1)
    history: list[Turn] = Field(default_factory=list)
    reference_answer: StrList = Field(default_factory=list)
    answer_must_include: list[StrList] = Field(default_factory=list)
    sources: StrList = Field(default_factory=list)
    reference_contexts: StrList = Field(default_factory=list)
    answerable: bool = True
    # a follow-up as a person would write it on its own: the rewrite is measured against it
    standalone: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if any(not group for group in self.answer_must_include):
            raise ValueError("answer_must_include has an empty group: each group needs one alternative")
        if not self.answerable and self.answer_must_include:
            raise ValueError("an unanswerable question (answerable: false) cannot have answer_must_include")
        return self

    @property
    def history_dicts(self) -> list[dict[str, str]]:
        return [t.model_dump() for t in self.history]


class QuestionSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    corpus: str | None = None  # as written: relative to the file
    description: str | None = None
    questions: list[Question] = Field(min_length=1)

    # where it was read from (not part of the format)
    path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _ids(self) -> QuestionSet:
        width = max(3, len(str(len(self.questions))))
        taken = {q.id for q in self.questions if q.id}
        for i, q in enumerate(self.questions, 1):
            if not q.id:
                candidate = f"q{i:0{width}d}"
                while candidate in taken:
                    candidate += "_"
                q.id = candidate
                taken.add(candidate)
        return self

    @property
    def corpus_dir(self) -> Path | None:
        """The ``corpus`` field resolved against the file's folder."""
        if not self.corpus:
            return None
        base = self.path.parent if self.path else Path.cwd()
        return (base / self.corpus).resolve()

    def limited(self, limit: int | None) -> QuestionSet:
        if not limit:
            return self
        return self.model_copy(update={"questions": self.questions[:limit]})


# --- loading ---------------------------------------------------------------------------


def load_questions(path: Path | str) -> QuestionSet:
    """Read a native question file (YAML, JSON or JSON Lines); raise ``QuestionFileError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(path, [(None, "", f"cannot read the file: {exc}")]) from None
    if path.suffix.lower() == ".jsonl":
        return _load_jsonl(path, text)
    return _load_yaml(path, text)


def _load_yaml(path: Path, text: str) -> QuestionSet:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise QuestionFileError(path, [(line, "", f"not valid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise QuestionFileError(path, [(None, "", f"not valid YAML: {exc}")]) from None
    if data is None:
        raise QuestionFileError(path, [(1, "", "the file is empty")])
    bare = isinstance(data, list)  # a bare list of questions is accepted too

    def line_of(loc: tuple) -> int | None:
        return _node_line(node, loc[1:] if bare and loc[:1] == ("questions",) else loc)

    if bare:
        data = {"questions": data}
    if not isinstance(data, dict):
        raise QuestionFileError(path, [(1, "", "expected a mapping with a 'questions' list")])
    try:
        qs = QuestionSet.model_validate(data)
    except ValidationError as exc:
        raise QuestionFileError(path, _problems(exc, line_of)) from None
    _check_unique_ids(path, qs, lambda i: line_of(("questions", i)))
    qs.path = path.resolve()
    return qs


def _load_jsonl(path: Path, text: str) -> QuestionSet:
    header: dict[str, Any] = {}
    rows: list[tuple[int, dict]] = []
    problems: list[tuple[int | None, str, str]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append((lineno, "", f"not valid JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            problems.append((lineno, "", "each line must be a JSON object"))
        elif "question" not in obj and obj and set(obj) <= {"name", "corpus", "description"}:
            header.update(obj)
        else:
            rows.append((lineno, obj))
    if problems:
        raise QuestionFileError(path, problems)
    if not rows:
        raise QuestionFileError(path, [(None, "questions", "the file holds no questions")])
    lines = [line for line, _ in rows]

    def line_of(loc: tuple) -> int | None:
        if len(loc) >= 2 and loc[0] == "questions" and isinstance(loc[1], int) and loc[1] < len(lines):
            return lines[loc[1]]
        return None

    try:
        qs = QuestionSet.model_validate({**header, "questions": [obj for _, obj in rows]})
    except ValidationError as exc:
        raise QuestionFileError(path, _problems(exc, line_of)) from None
    _check_unique_ids(path, qs, lambda i: lines[i])
    qs.path = path.resolve()
    return qs


def _check_unique_ids(path: Path, qs: QuestionSet, line_of) -> None:
    seen: dict[str, int] = {}
    for i, q in enumerate(qs.questions):
        if q.id in seen:
            raise QuestionFileError(
                path,
                [(line_of(i), f"questions[{i}].id", f"duplicate id {q.id!r} (also questions[{seen[q.id]}])")],
            )
        seen[q.id] = i


def _problems(exc: ValidationError, line_of) -> list[tuple[int | None, str, str]]:
    out: list[tuple[int | None, str, str]] = []
    seen: set[tuple] = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        field = _field_path(loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown field (allowed: {_allowed(loc)})"
        key = (field, msg)
        if key in seen:
            continue
        seen.add(key)
        out.append((line_of(loc), field, msg))
    return out


def _allowed(loc: tuple) -> str:
    model = Turn if "history" in loc else Question if "questions" in loc and len(loc) > 2 else QuestionSet
    return ", ".join(n for n, f in model.model_fields.items() if not f.exclude)


def _field_path(loc: tuple) -> str:
    """('questions', 3, 'history', 0, 'role') -> 'questions[3].history[0].role'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}" if out else str(part)
        # pydantic's validator tags (e.g. 'function-after[...]') are not fields: skip them
    return out


def _node_line(node: yaml.Node, loc: tuple) -> int | None:
    """1-based line of the deepest YAML node that ``loc`` reaches (a missing field: its parent)."""
    current = node
    for part in loc:
        child = None
        if isinstance(current, yaml.MappingNode) and isinstance(part, str):
            child = next((v for k, v in current.value if k.value == part), None)
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            child = current.value[part]
        if child is None:
            break
        current = child
    return current.start_mark.line + 1 if current is not None else None
