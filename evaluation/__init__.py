"""Evaluate the assistant on a question set: metrics, importers for public datasets, reports.

``run_evaluation(questions_path, settings, out_dir=None, ...) -> EvaluationReport`` is what the
CLI (``python -m evaluation``) and the staff "Evaluation" view call.
"""

from evaluation.importers import LoadedSet, load_question_set
from evaluation.questions import Question, QuestionFileError, QuestionSet, load_questions
from evaluation.runner import EvaluationReport, QuestionResult, run_evaluation

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
