"""Evaluate the assistant on a question set: metrics, importers for public datasets, reports.

``run_evaluation(questions_path, settings, out_dir=None, ...) -> EvaluationReport`` is what the
CLI (``python -m assistant.evaluation``) and the staff "Evaluation" view call.
"""

from assistant.evaluation.importers import LoadedSet, load_question_set
from assistant.evaluation.questions import Question, QuestionFileError, QuestionSet, load_questions
from assistant.evaluation.runner import EvaluationReport, QuestionResult, run_evaluation

__all__ = [
    "EvaluationReport",
    "LoadedSet",
    "Question",
    "QuestionFileError",
    "QuestionResult",
    "QuestionSet",
    "load_question_set",
    "load_questions",
    "run_evaluation",
]
