"""Is a model's reply a refusal? The prompt asks for one exact sentence when the passages do not
hold the answer (``prompts.DECLINE_TEXT``), but models paraphrase it ("The passages do not
mention the budget", "I'm sorry, I couldn't find that") and answer in part ("The documents do
not say when, but the partners presented the results in June 2024 [1]").

So: a reply is a refusal when it says so in any of the common ways and cites nothing. A reply
that says something is missing and still cites a passage is a partial answer: it keeps its
citations, and its own words say what is missing.
"""

from __future__ import annotations

import re

_VERB = r"(?:(?:fully|directly|clearly|explicitly)\s+)?(?:mention|say|state|contain|include|provide|specify|cover|address|discuss|describe|give|answer)"
_REFUSAL = re.compile(
    "|".join(
        [
            r"\b(?:could|can|did|do|does|was|were|am|is|are)\s*(?:not|n't)\s+(?:be\s+)?"
            r"(?:find|found|locate|located|answer|answered|determine|determined|identify|know)\b",
            r"\b(?:cannot|can't|unable to)\s+(?:find|locate|answer|determine|identify|tell)\b",
            rf"\b(?:does|do|did)\s*(?:not|n't)\s+{_VERB}",
            r"\bno\s+(?:information|mention|details?|data|answer|indication|reference)\b",
            r"\bnot\s+(?:mentioned|stated|specified|provided|given|available|included|covered|"
            r"found|addressed|described|discussed)\b",
            r"\bnot enough (?:information|context|detail)\b",
            r"\bI (?:don't|do not) know\b",
            r"\bthere is nothing (?:about|on|in)\b",
        ]
    ),
    re.IGNORECASE,
)


def says_not_found(text: str) -> bool:
    """The reply says, in some common way, that the documents do not hold the answer."""
    return bool(_REFUSAL.search(text))


def is_refusal(text: str, cites: bool) -> bool:
    """A refusal: empty, or says the answer is not there and cites no passage."""
    return not text.strip() or (not cites and says_not_found(text))
