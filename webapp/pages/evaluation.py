"""The evaluation tab (staff only): run a question set from ``evals/`` against the assistant as
configured and show the report. Only the shipped sets can be chosen: no path comes from the page.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from kb.settings import PROJECT_ROOT
from webapp.auth import User
from webapp.pages import PRIVATE, progress_reporter, require_staff
from webapp.services import Services

log = logging.getLogger(__name__)

EVALS_DIR = PROJECT_ROOT / "evals"


def question_sets() -> dict[str, Path]:
    """The evaluation question sets shipped in ``evals/``, by file name."""
    if not EVALS_DIR.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(EVALS_DIR.iterdir())
        if p.suffix.lower() in (".yaml", ".yml", ".json", ".jsonl") and p.is_file()
    }


class EvaluationPage:
    def __init__(self, services: Services) -> None:
        self.services = services

    def run(
        self,
        question_set: str | None,
        limit: float | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ):
        user = require_staff(self.services, request)
        sets = question_sets()
        if question_set not in sets:
            raise gr.Error("Choose one of the question sets in evals/.")
        from evaluation import QuestionFileError, run_evaluation
        from evaluation.report import to_markdown

        settings = self.services.settings
        stamp = time.strftime(f"{Path(question_set).stem}-%Y%m%d-%H%M%S", time.gmtime())
        log.info("%s runs the evaluation %s", user.name, question_set)
        progress(0, desc="Evaluating")
        try:
            report = run_evaluation(
                sets[question_set],
                settings,
                out_dir=settings.data_dir / "reports" / stamp,
                limit=int(limit) if limit and limit > 0 else None,
                progress=progress_reporter(progress, "Question"),
            )
        except (QuestionFileError, FileNotFoundError) as exc:
            raise gr.Error(str(exc)) from None
        # The data dir is never served: hand Gradio a copy in a folder of its own.
        served = Path(tempfile.mkdtemp(prefix="evaluation-")) / f"{stamp}.html"
        shutil.copyfile(report.paths["html"], served)
        return to_markdown(report), gr.update(value=str(served), visible=True)

    def on_load(self, user: User | None) -> tuple:
        return (gr.update(visible=bool(user and user.is_staff)),)

    def build(self) -> list:
        """The tab's content; returns the components ``on_load`` updates."""
        gr.Markdown(
            "Runs a question set from `evals/` against the assistant as configured and reports "
            "retrieval, answer and refusal metrics (staff only; sign in on the Documents tab). "
            "See `python -m evaluation --help` for more options."
        )
        with gr.Column(visible=False) as panel:
            with gr.Row():
                question_set = gr.Dropdown(
                    choices=list(question_sets()), label="Question set", elem_id="eval-set", scale=3
                )
                limit = gr.Number(
                    value=0, precision=0, minimum=0, label="First N questions (0 = all)", scale=1
                )
            run = gr.Button("Run evaluation", variant="primary", elem_id="run-evaluation")
            report = gr.Markdown(elem_id="evaluation-report")
            report_file = gr.File(label="HTML report", visible=False, interactive=False)
        run.click(
            self.run,
            [question_set, limit],
            [report, report_file],
            api_name="staff_evaluation",
            api_visibility=PRIVATE,
            concurrency_id="evaluation",
            concurrency_limit=1,
        )
        return [panel]
