"""Public RAG datasets -> a native ``QuestionSet`` plus the documents to evaluate against.

* **SQuAD 2.0** JSON: every paragraph ``context`` becomes one document
  (``<title>-<nnn>.txt``); a question's ``answers`` become alternative reference answers, its
  paragraph its source; ``is_impossible: true`` becomes ``answerable: false``.
* **LlamaIndex** ``LabelledRagDataset`` JSON: ``examples`` with ``query``,
  ``reference_contexts`` and ``reference_answer``; the documents are the files in
  ``source_files/`` beside the JSON (the dataset's layout), or, without that folder, the
  distinct reference contexts written as text files.
* **Tonic Validate** Q&A JSON: a list of ``question`` / ``answer`` with either ``essay`` (a file
  name) + ``quote``, or ``reference_article`` (a title) + ``reference_text``. Documents are the
  essays the questions name, found in a folder beside the JSON (titles are matched against the
  first lines of each file); an article that cannot be found is written from its reference text.
  Pass ``--corpus`` to evaluate against a whole folder (e.g. all 212 essays) instead.

Native files (YAML / JSON / JSONL) are read by ``questions.load_questions``.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from evaluation.questions import Question, QuestionFileError, QuestionSet, _problems, load_questions

Format = Literal["native", "squad", "llamaindex", "tonic"]
FORMATS: tuple[str, ...] = ("native", "squad", "llamaindex", "tonic")


@dataclass
class SourceDocument:
    """One document of an imported corpus: text to write, or a file to copy."""

    name: str  # path relative to the corpus folder, also the questions' source id
    text: str | None = None
    path: Path | None = None

    def write(self, dest_dir: Path) -> Path:
        target = dest_dir / self.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.path is not None:
            shutil.copyfile(self.path, target)
        else:
            target.write_text(self.text or "", encoding="utf-8")
        return target


@dataclass
class LoadedSet:
    """A question set as read from any format, with the documents an importer found."""

    questions: QuestionSet
    format: str
    documents: list[SourceDocument] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things the user should know (fallbacks)

    def write_documents(self, dest_dir: Path) -> int:
        dest_dir.mkdir(parents=True, exist_ok=True)
        for doc in self.documents:
            doc.write(dest_dir)
        return len(self.documents)


def detect_format(path: Path) -> str:
    """Guess the format from the suffix and, for ``.json``, the top-level shape."""
    if path.suffix.lower() in (".yaml", ".yml", ".jsonl"):
        return "native"
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "native"  # let the native reader report what is wrong, with a line number
    if isinstance(data, dict):
        if "examples" in data:
            return "llamaindex"
        if isinstance(data.get("data"), list) and data["data"] and "paragraphs" in data["data"][0]:
            return "squad"
    tonic_keys = {"essay", "reference_article", "quote", "reference_text"}
    if isinstance(data, list) and data and isinstance(data[0], dict) and tonic_keys & set(data[0]):
        return "tonic"
    return "native"


def load_question_set(path: Path | str, fmt: str | None = None) -> LoadedSet:
    """Read a question file of any supported format; raise ``QuestionFileError`` on bad input."""
    path = Path(path)
    if not path.is_file():
        raise QuestionFileError(path, [(None, "", "no such file")])
    fmt = fmt or detect_format(path)
    if fmt == "native":
        return LoadedSet(load_questions(path), "native")
    reader = {"squad": import_squad, "llamaindex": import_llamaindex, "tonic": import_tonic}.get(fmt)
    if reader is None:
        raise QuestionFileError(
            path, [(None, "", f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")]
        )
    return reader(path)


# --- helpers --------------------------------------------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(path, [(None, "", f"cannot read the file: {exc}")]) from None
    except json.JSONDecodeError as exc:
        raise QuestionFileError(path, [(exc.lineno, "", f"not valid JSON: {exc.msg}")]) from None


def _validate(path: Path, adapter: TypeAdapter, data):
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise QuestionFileError(path, _problems(exc, lambda loc: None)) from None


def _slug(text: str, default: str = "doc") -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug[:60] or default


def _question_set(path: Path, name: str, questions: list[dict]) -> QuestionSet:
    try:
        qs = QuestionSet(name=name, questions=[Question.model_validate(q) for q in questions])
    except ValidationError as exc:
        raise QuestionFileError(path, _problems(exc, lambda loc: None)) from None
    qs.path = path.resolve()
    return qs


# --- SQuAD 2.0 -----------------------------------------------------------------------------------


class _SquadAnswer(_Loose):
    text: str


class _SquadQA(_Loose):
    id: str | None = None
    question: str
    answers: list[_SquadAnswer] = []
    is_impossible: bool = False


class _SquadParagraph(_Loose):
    context: str
    qas: list[_SquadQA] = []


class _SquadArticle(_Loose):
    title: str = ""
    paragraphs: list[_SquadParagraph]


class _SquadFile(_Loose):
    data: list[_SquadArticle]


def import_squad(path: Path) -> LoadedSet:
    """SQuAD 2.0 JSON -> one document per paragraph; impossible questions must be declined."""
    squad = _validate(path, TypeAdapter(_SquadFile), _read_json(path))
    docs: list[SourceDocument] = []
    questions: list[dict] = []
    for a, article in enumerate(squad.data, 1):
        stem = _slug(article.title, f"article-{a}")
        for p, para in enumerate(article.paragraphs, 1):
            name = f"{stem}-{p:03d}.txt"
            docs.append(SourceDocument(name, text=para.context))
            for qa in para.qas:
                answers = list(dict.fromkeys(ans.text.strip() for ans in qa.answers if ans.text.strip()))
                answerable = not qa.is_impossible and bool(answers)
                questions.append(
                    {
                        "id": qa.id,
                        "question": qa.question,
                        "answerable": answerable,
                        "reference_answer": answers if answerable else [],
                        "sources": [name] if answerable else [],
                    }
                )
    titles = ", ".join(a.title for a in squad.data if a.title)
    qs = _question_set(path, f"squad: {titles or path.stem}", questions)
    return LoadedSet(qs, "squad", docs)


# --- LlamaIndex LabelledRagDataset ---------------------------------------------------------------


class _LlamaExample(_Loose):
    query: str
    reference_contexts: list[str] | None = None
    reference_answer: str | None = None


class _LlamaFile(_Loose):
    examples: list[_LlamaExample]


def import_llamaindex(path: Path) -> LoadedSet:
    """LabelledRagDataset JSON; documents from ``source_files/`` beside it."""
    dataset = _validate(path, TypeAdapter(_LlamaFile), _read_json(path))
    docs: list[SourceDocument] = []
    notes: list[str] = []
    source_dir = path.parent / "source_files"
    if source_dir.is_dir():
        for f in sorted(p for p in source_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
            docs.append(SourceDocument(f.relative_to(source_dir).as_posix(), path=f))
    else:
        contexts = dict.fromkeys(c for ex in dataset.examples for c in ex.reference_contexts or [])
        docs = [SourceDocument(f"context-{i:03d}.txt", text=c) for i, c in enumerate(contexts, 1)]
        notes.append(f"no source_files/ beside {path.name}: the reference contexts are the documents")
    questions = [
        {
            "id": f"q{i:03d}",
            "question": ex.query,
            "reference_answer": [ex.reference_answer] if ex.reference_answer else [],
            "reference_contexts": ex.reference_contexts or [],
        }
        for i, ex in enumerate(dataset.examples, 1)
    ]
    qs = _question_set(path, f"llamaindex: {path.parent.name}", questions)
    return LoadedSet(qs, "llamaindex", docs, notes)


# --- Tonic Validate ---------------------------------------------------------------------------------


class _TonicItem(_Loose):
    question: str
    answer: str | None = None
    essay: str | None = None
    reference_article: str | None = None
    quote: str | None = None
    reference_text: str | None = None


def _essay_dirs(path: Path) -> list[Path]:
    here = path.parent
    return [here, *sorted(p for p in here.iterdir() if p.is_dir())]


def _title_index(dirs: list[Path]) -> dict[str, Path]:
    """Lower-cased title -> file, from the first few non-empty lines of each text file."""
    index: dict[str, Path] = {}
    for d in dirs:
        for f in sorted(d.glob("*.txt")):
            try:
                head = f.read_text(encoding="utf-8", errors="replace")[:600]
            except OSError:
                continue
            for line in [ln.strip() for ln in head.splitlines() if ln.strip()][:4]:
                index.setdefault(line.casefold(), f)
    return index


def import_tonic(path: Path) -> LoadedSet:
    """Tonic Validate Q&A JSON; documents are the essays it names, found beside the file."""
    items = _validate(path, TypeAdapter(list[_TonicItem]), _read_json(path))
    dirs = _essay_dirs(path)
    titles: dict[str, Path] | None = None
    docs: dict[str, SourceDocument] = {}
    notes: list[str] = []
    questions: list[dict] = []
    for i, item in enumerate(items, 1):
        context = item.quote or item.reference_text
        name: str | None = None
        if item.essay:
            found = next((d / item.essay for d in dirs if (d / item.essay).is_file()), None)
            name = item.essay
            if found is not None:
                docs.setdefault(name, SourceDocument(name, path=found))
        elif item.reference_article:
            if titles is None:
                titles = _title_index(dirs)
            found = titles.get(item.reference_article.strip().casefold())
            name = found.name if found else f"{_slug(item.reference_article)}.txt"
            if found is not None:
                docs.setdefault(name, SourceDocument(name, path=found))
        if name and name not in docs:
            if context:
                docs[name] = SourceDocument(name, text=context)
                notes.append(
                    f"{item.essay or item.reference_article!r} not found beside {path.name}: "
                    "its reference text stands in for it"
                )
            else:
                notes.append(f"{item.essay or item.reference_article!r} not found beside {path.name}")
        questions.append(
            {
                "id": f"q{i:03d}",
                "question": item.question,
                "reference_answer": [item.answer] if item.answer else [],
                "reference_contexts": [context] if context else [],
                "sources": [name] if name else [],
            }
        )
    qs = _question_set(path, f"tonic: {path.stem}", questions)
    return LoadedSet(qs, "tonic", list(docs.values()), notes)
