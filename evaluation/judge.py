"""Optional LLM-judged correctness and faithfulness, used only when answers come from a model.

Why not RAGAS: ragas 0.4 builds a tiktoken tokenizer at import time, which downloads its BPE
file from the internet and so fails on an offline machine even with a local model
(vibrantlabsai/ragas issue #2538); it also pulls in a large dependency tree for two scores.
Instead one documented prompt, sent with the same OpenAI-compatible settings the assistant
uses (``ChatOpenAI`` with the configured model, base URL, key, timeout and retries), asks for
both scores at once, RAGAS-style:

* **correctness** (1-5, reported as (score - 1) / 4 in 0..1): does the answer state what the
  reference answer states? Only for questions with a reference answer.
* **faithfulness** (0..1): the share of the answer's claims that the retrieved passages
  support (RAGAS's definition, judged in one step instead of claim extraction + verification).

The judge never runs in extractive mode and no offline metric depends on it. A judge reply
that cannot be read leaves both scores empty for that question, with the reason recorded, and
the report says how many replies were valid ("judge: n of m replies valid").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import openai

from kb.settings import Settings

JUDGE_SYSTEM = """You are grading the answer of a document question-answering assistant.
You are strict, literal and brief. Reply with one JSON object and nothing else."""

JUDGE_PROMPT = """Grade the ANSWER to the QUESTION.

1. correctness: compare the ANSWER with the REFERENCE ANSWER.
   5 = states everything the reference states, nothing contradicts it;
   4 = states the essential facts, a minor detail missing;
   3 = partly correct: some essential facts missing or imprecise;
   2 = mostly wrong or mostly missing;
   1 = wrong, contradicts the reference, or does not answer.
   If there is no reference answer, use null.
2. faithfulness: split the ANSWER into its factual claims; give the share (0.0 to 1.0) of claims
   that the PASSAGES state or directly imply. Ignore citation markers like [1].
   A reply that only says it cannot answer from the documents has faithfulness 1.0.

Reply exactly as: {{"correctness": <1-5 or null>, "faithfulness": <0.0-1.0>, "reason": "<one sentence>"}}

<question>
{question}
</question>
<reference_answer>
{reference}
</reference_answer>
<passages>
{passages}
</passages>
<answer>
{answer}
</answer>"""


@dataclass
class Judgement:
    correctness: float | None = None  # 0..1
    faithfulness: float | None = None  # 0..1
    reason: str = ""
    error: str | None = None


class Judge:
    """Grades answers with the configured chat model (``ChatOpenAI``, temperature 0), in JSON
    mode (``response_format``: OpenAI, llama.cpp, vLLM and Ollama take it). A server that
    refuses JSON mode is asked again without it, and from then on never with it."""

    def __init__(self, settings: Settings) -> None:
        from langchain_openai import ChatOpenAI

        self.model = settings.chat_model
        self.plain = ChatOpenAI(
            model=settings.chat_model,
            temperature=0.0,
            **settings.openai_client_kwargs(),
            **settings.model_limits(settings.judge_max_tokens),
        )
        self.llm = self.plain.bind(response_format={"type": "json_object"})
        self.json_mode = True

    def grade(self, question: str, answer: str, reference: list[str], passages: list[str]) -> Judgement:
        prompt = JUDGE_PROMPT.format(
            question=question,
            reference="\n---\n".join(reference) if reference else "(none)",
            passages="\n\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1)) or "(none)",
            answer=answer or "(empty)",
        )
        messages = [("system", JUDGE_SYSTEM), ("user", prompt)]
        try:
            try:
                reply = (self.llm if self.json_mode else self.plain).invoke(messages)
            except openai.BadRequestError:
                if not self.json_mode:
                    raise
                self.json_mode = False  # (a server without JSON mode says 400)
                reply = self.plain.invoke(messages)
        except Exception as exc:  # any client failure: the judge is optional, the run goes on
            return Judgement(error=f"judge call failed: {type(exc).__name__}: {exc}"[:300])
        return parse_judgement(str(reply.content), has_reference=bool(reference))


def parse_judgement(text: str, has_reference: bool = True) -> Judgement:
    """Read the judge's JSON (tolerating code fences and prose around it) into 0..1 scores."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        return Judgement(error=f"judge reply is not JSON: {text[:200]!r}")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return Judgement(error=f"judge reply is not JSON: {text[:200]!r}")
    out = Judgement(reason=str(data.get("reason", ""))[:500])
    try:
        c = data.get("correctness")
        if c is not None and has_reference:
            out.correctness = min(max((float(c) - 1) / 4, 0.0), 1.0)
        f = data.get("faithfulness")
        if f is not None:
            out.faithfulness = min(max(float(f), 0.0), 1.0)
    except (TypeError, ValueError):
        return Judgement(error=f"judge scores are not numbers: {text[:200]!r}")
    return out
