"""The evaluation report: ``report.json`` (everything), ``report.md`` and ``report.html``.

The HTML page is one file with inline CSS and SVG charts (per-metric bars, a latency
histogram), the worst questions with their retrieved passages, and, with a baseline, a table
of deltas with regressions flagged. It needs no network and no JavaScript.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evaluation.results import EvaluationReport


@dataclass(frozen=True)
class MetricInfo:
    label: str
    group: Literal["retrieval", "answers", "refusals", "judge", "latency", "errors"]
    higher_is_better: bool = True
    unit: Literal["rate", "s"] = "rate"
    help: str = ""


# The summary's metric names, in display order; names are stable (baselines and --fail-under use them).
METRICS: dict[str, MetricInfo] = {
    "hit_at_1": MetricInfo("hit@1", "retrieval", help="first passage is relevant"),
    "hit_at_k": MetricInfo("hit@k", "retrieval", help="a relevant passage among the k retrieved"),
    "mrr": MetricInfo("MRR", "retrieval", help="1/rank of the first relevant passage"),
    "context_recall": MetricInfo(
        "context recall", "retrieval", help="reference-answer words in the passages"
    ),
    "must_include": MetricInfo("must include", "answers", help="every answer_must_include group present"),
    "f1": MetricInfo("token F1", "answers", help="SQuAD token F1 against the reference answer"),
    "exact_match": MetricInfo("exact match", "answers", help="SQuAD exact match"),
    "semantic_similarity": MetricInfo(
        "semantic similarity", "answers", help="embedding cosine to the reference"
    ),
    "groundedness": MetricInfo(
        "groundedness", "answers", help="answer sentences supported by cited passages"
    ),
    "citation_precision": MetricInfo(
        "citation precision", "answers", help="cited passages that support the answer"
    ),
    "declined_when_unanswerable": MetricInfo("declined when unanswerable", "refusals"),
    "answered_when_answerable": MetricInfo("answered when answerable", "refusals"),
    "declined_or_flagged_when_unanswerable": MetricInfo(
        "declined or flagged when unanswerable", "refusals", help="declined, or shown as unverified or unsure"
    ),
    "answered_verified_when_answerable": MetricInfo(
        "answered (not unverified) when answerable", "refusals", help="answered with a supported claim"
    ),
    "judge_correctness": MetricInfo("judged correctness", "judge", help="LLM judge, 1-5 scaled to 0-1"),
    "judge_faithfulness": MetricInfo("judged faithfulness", "judge", help="LLM judge: claims supported"),
    "first_token_p50_s": MetricInfo("first token p50", "latency", False, "s"),
    "first_token_p95_s": MetricInfo("first token p95", "latency", False, "s"),
    "total_p50_s": MetricInfo("total p50", "latency", False, "s"),
    "total_p95_s": MetricInfo("total p95", "latency", False, "s"),
    "error_rate": MetricInfo("errors", "errors", False, help="questions that raised or got a model error"),
}

RATE_TOLERANCE = 0.02  # a rate that drops by more than this is a regression
LATENCY_TOLERANCE = 0.20  # latency: more than 20 % slower ...
LATENCY_MIN_S = 0.05  # ... and more than 50 ms slower
QUESTION_DROP = 0.25  # a question whose quality drops by this much is listed


def fmt_value(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    info = METRICS.get(name)
    if info and info.unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    return f"{value:.3f}"


def fmt_delta(name: str, delta: float | None) -> str:
    if delta is None:
        return ""
    info = METRICS.get(name)
    if info and info.unit == "s":
        return f"{delta * 1000:+.0f} ms"
    return f"{delta:+.3f}"


# --- baseline ------------------------------------------------------------------------------------


def load_report(path: Path | str) -> dict[str, Any]:
    """An earlier ``report.json``; raises ValueError with a readable reason."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the baseline report {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("summary"), dict):
        raise ValueError(f"{path} is not an evaluation report.json (no 'summary')")
    data.setdefault("_path", str(path))
    return data


def is_regression(name: str, old: float | None, new: float | None) -> bool:
    """Worse beyond tolerance: rates drop by > 0.02; latencies grow by > 20 % and > 50 ms."""
    if old is None or new is None:
        return False
    info = METRICS.get(name)
    if info is None:
        return False
    if info.unit == "s":
        return new - old > LATENCY_MIN_S and new > old * (1 + LATENCY_TOLERANCE)
    drop = old - new if info.higher_is_better else new - old
    return drop > RATE_TOLERANCE


def is_improvement(name: str, old: float | None, new: float | None) -> bool:
    return is_regression(name, new, old)


def compare(report: EvaluationReport, old: dict[str, Any]) -> dict[str, Any]:
    """Side-by-side summary with deltas, regressions flagged, and the questions that got worse."""
    rows = []
    for name in METRICS:
        a, b = old["summary"].get(name), report.summary.get(name)
        if a is None and b is None:
            continue
        rows.append(
            {
                "metric": name,
                "old": a,
                "new": b,
                "delta": None if a is None or b is None else b - a,
                "regression": is_regression(name, a, b),
                "improvement": is_improvement(name, a, b),
            }
        )
    old_q = {r["id"]: r for r in old.get("results", []) if "id" in r}
    worse = []
    for r in report.results:
        before = old_q.get(r.id)
        if before is not None and before.get("quality", 0) - r.quality >= QUESTION_DROP:
            worse.append({"id": r.id, "question": r.question, "old": before.get("quality"), "new": r.quality})
    return {
        "file": old.get("_path", ""),
        "created_at": old.get("created_at", ""),
        "mode": old.get("mode", ""),
        "same_corpus": (old.get("corpus") or {}).get("fingerprint") == report.corpus.get("fingerprint"),
        "same_questions": set(old_q) == {r.id for r in report.results},
        "rows": rows,
        "regressions": [row["metric"] for row in rows if row["regression"]],
        "questions_worse": worse,
    }


# --- writing -------------------------------------------------------------------------------------


def write_reports(report: EvaluationReport, out_dir: Path) -> dict[str, str]:
    """Write the three files; returns their paths (also stored in ``report.paths``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: str(out_dir / f"report.{name}") for name in ("json", "md", "html")}
    report.paths = paths
    Path(paths["json"]).write_text(report.model_dump_json(indent=2), encoding="utf-8")
    Path(paths["md"]).write_text(to_markdown(report), encoding="utf-8")
    Path(paths["html"]).write_text(to_html(report), encoding="utf-8")
    return paths


def worst(report: EvaluationReport, n: int = 10) -> list:
    return sorted(report.results, key=lambda r: (r.quality, r.id))[:n]


def _summary_rows(report: EvaluationReport) -> list[tuple[str, MetricInfo, float | None, int | None]]:
    rows = []
    for name, info in METRICS.items():
        value = report.summary.get(name)
        if value is None:
            continue
        rows.append((name, info, value, report.counts.get(f"n_{name}")))
    return rows


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _answer_label(r) -> str:
    why = f": {r.reason}" if r.reason else ""
    if r.declined:
        return f" (declined{why})"
    if r.uncertain:
        return f" (unsure{why})"
    return {"unverified": " (unverified)", "partly_supported": " (partly supported)"}.get(r.verdict or "", "")


def to_markdown(report: EvaluationReport) -> str:
    c = report.counts
    lines = [
        f"# Evaluation: {report.name}",
        "",
        f"- questions: {c['questions']} ({c['answerable']} answerable, {c['unanswerable']} unanswerable, "
        f"{c['follow_ups']} follow-ups) from `{report.questions_file}` ({report.format})",
        f"- answers: {report.mode}{f' ({report.model})' if report.model else ''}, top_k {report.k}",
        f"- corpus: {report.corpus.get('dir', '')}: {report.corpus.get('documents', 0)} documents, "
        f"{report.corpus.get('chunks', 0)} chunks, fingerprint `{report.corpus.get('fingerprint', '')}`",
        f"- run: {report.created_at}, {report.wall_s:.1f} s",
    ]
    if any(c.get(f"verdict_{v}") for v in ("supported", "partly_supported", "unverified")):
        lines.append(
            f"- claim check: {c.get('verdict_supported', 0)} answers supported, "
            f"{c.get('verdict_partly_supported', 0)} partly supported, {c.get('verdict_unverified', 0)} "
            "unverified (shown with a warning)"
        )
    for note in report.notes:
        lines.append(f"- note: {note}")
    lines += ["", "## Summary", "", "| metric | value | n |", "| --- | ---: | ---: |"]
    for name, info, value, n in _summary_rows(report):
        lines.append(f"| {info.label} (`{name}`) | {fmt_value(name, value)} | {'' if n is None else n} |")
    if report.baseline:
        b = report.baseline
        lines += ["", f"## Compared with {b['file'] or 'the baseline'} ({b['created_at']})", ""]
        if not b["same_corpus"]:
            lines.append("- the corpus differs from the baseline's")
        if not b["same_questions"]:
            lines.append("- the question ids differ from the baseline's")
        lines += ["", "| metric | baseline | now | delta | |", "| --- | ---: | ---: | ---: | --- |"]
        for row in b["rows"]:
            flag = "**REGRESSION**" if row["regression"] else ("improved" if row["improvement"] else "")
            name = row["metric"]
            lines.append(
                f"| {METRICS[name].label} | {fmt_value(name, row['old'])} | {fmt_value(name, row['new'])} | "
                f"{fmt_delta(name, row['delta'])} | {flag} |"
            )
        if b["questions_worse"]:
            lines += ["", "Questions that got worse:", ""]
            for w in b["questions_worse"]:
                lines.append(f"- `{w['id']}` {w['question']} ({w['old']:.2f} → {w['new']:.2f})")
    lines += ["", "## Worst questions", ""]
    for r in worst(report):
        lines.append(f"### `{r.id}` {r.question} (quality {r.quality:.2f})")
        lines.append("")
        if r.history:
            lines.append(f"- after: {' / '.join(_one_line(t['content'], 80) for t in r.history)}")
        lines.append(
            f"- expected: {'decline' if not r.answerable else _one_line('; '.join(r.reference_answer))}"
        )
        lines.append(f"- answer{_answer_label(r)}: {_one_line(r.answer, 400)}")
        if r.unsupported:
            lines.append(f"- not held by its passages: {_one_line(' / '.join(r.unsupported), 300)}")
        if r.error:
            lines.append(f"- error: {r.error}")
        if r.missing:
            lines.append(f"- missing: {', '.join(' / '.join(g) for g in r.missing)}")
        scores = ", ".join(f"{k} {v:.2f}" for k, v in r.metrics.items())
        if scores:
            lines.append(f"- scores: {scores}")
        for p in r.passages:
            mark = {True: "✓", False: "✗", None: " "}[p.relevant]
            lines.append(f"  - [{p.n}] {mark} {p.location} ({p.score:.3f}): {_one_line(p.text, 160)}")
        lines.append("")
    lines += [
        "## All questions",
        "",
        "| id | expected | declined | must | F1 | sim | hit@k | grounded | first token | total |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report.results:
        g = r.metrics.get
        lines.append(
            f"| `{_md_cell(r.id)}` | {'answer' if r.answerable else 'decline'} | "
            f"{'yes' if r.declined else 'no'} | "
            f"{fmt_value('must_include', g('must_include'))} | {fmt_value('f1', g('f1'))} | "
            f"{fmt_value('semantic_similarity', g('semantic_similarity'))} | "
            f"{fmt_value('hit_at_k', g('hit_at_k'))} | "
            f"{fmt_value('groundedness', g('groundedness'))} | "
            f"{fmt_value('first_token_p50_s', r.timings.get('first_token_s'))} | "
            f"{fmt_value('total_p50_s', r.timings.get('total_s'))} |"
        )
    return "\n".join(lines) + "\n"


# --- HTML ----------------------------------------------------------------------------------------

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0}
body{background:#f6f7f9}
main{max-width:1060px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:28px 0 10px;border-bottom:1px solid #d8dce3;padding-bottom:4px}
.meta{color:#566;margin:0 0 12px}
.meta span{margin-right:18px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:22px}
.card small{color:#667}
table{border-collapse:collapse;width:100%;background:#fff;font-size:14px}
th,td{border:1px solid #e1e4ea;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b3261e;font-weight:600}
.good{color:#1b7f3b}
.note{background:#fff7e0;border:1px solid #f0d58a;padding:6px 10px;border-radius:6px;margin:6px 0}
.q{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:10px 14px;margin:10px 0}
.q h3{font-size:15px;margin:0 0 6px}
.q .ans{white-space:pre-wrap;background:#f3f5f8;padding:6px 8px;border-radius:4px}
.p{font-size:13px;border-left:3px solid #c5cad3;padding:2px 8px;margin:6px 0;white-space:pre-wrap}
.p.rel{border-color:#2e9d57}
.p.irr{border-color:#d9534f}
code{background:#eef0f4;padding:0 3px;border-radius:3px}
svg text{font:12px system-ui,sans-serif}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def bar_chart(rows: list[tuple[str, float, float | None]], width: int = 700) -> str:
    """Horizontal bars for 0..1 metrics: (label, value, baseline or None)."""
    label_w, row_h, pad = 210, 24, 8
    bar_w = width - label_w - 70
    height = pad * 2 + row_h * len(rows) + 18
    out = [f'<svg width="{width}" height="{height}" role="img" aria-label="metric bars">']
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + bar_w * t
        out.append(f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{height - 18}" stroke="#e3e6eb"/>')
        out.append(f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle" fill="#667">{t:g}</text>')
    for i, (label, value, base) in enumerate(rows):
        y = pad + i * row_h
        v = min(max(value, 0.0), 1.0)
        colour = "#2e9d57" if v >= 0.8 else "#e0a526" if v >= 0.5 else "#d9534f"
        out.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{_e(label)}</text>')
        out.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{bar_w * v:.1f}" height="{row_h - 8}" '
            f'fill="{colour}" rx="2"><title>{_e(label)}: {value:.3f}</title></rect>'
        )
        out.append(f'<text x="{label_w + bar_w * v + 6:.1f}" y="{y + 16}">{value:.3f}</text>')
        if base is not None:
            bx = label_w + bar_w * min(max(base, 0.0), 1.0)
            out.append(
                f'<line x1="{bx:.1f}" y1="{y + 1}" x2="{bx:.1f}" y2="{y + row_h - 1}" stroke="#1d2330" '
                f'stroke-width="2"><title>baseline {base:.3f}</title></line>'
            )
    out.append("</svg>")
    return "".join(out)


def histogram(series: dict[str, list[float]], width: int = 700, bins: int = 12) -> str:
    """Side-by-side histogram of latencies (seconds) for each named series."""
    values = [v for vs in series.values() for v in vs]
    if not values:
        return "<p>No latencies were measured.</p>"
    top = max(values)
    step = _nice_step(top / bins) if top > 0 else 0.1
    nbins = max(1, math.ceil(top / step + 1e-9)) if top > 0 else 1
    counts = {name: [0] * nbins for name in series}
    for name, vs in series.items():
        for v in vs:
            counts[name][min(int(v / step), nbins - 1)] += 1
    peak = max(max(c) for c in counts.values()) or 1
    left, bottom, plot_h, top_pad = 40, 34, 180, 26
    plot_w = width - left - 10
    height = top_pad + plot_h + bottom
    colours = ["#3b6fd4", "#e0a526", "#2e9d57"]
    group_w = plot_w / nbins
    bar_w = max(2.0, (group_w - 4) / len(series))
    out = [f'<svg width="{width}" height="{height}" role="img" aria-label="latency histogram">']
    for j, name in enumerate(series):
        out.append(
            f'<rect x="{left + j * 150}" y="6" width="12" height="12" fill="{colours[j % 3]}"/>'
            f'<text x="{left + j * 150 + 16}" y="16">{_e(name)}</text>'
        )
    base_y = top_pad + plot_h
    for t in range(0, peak + 1, max(1, math.ceil(peak / 4))):
        y = base_y - plot_h * t / peak
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#e3e6eb"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#667">{t}</text>'
        )
    for b in range(nbins):
        x0 = left + b * group_w
        for j, name in enumerate(series):
            n = counts[name][b]
            h = plot_h * n / peak
            out.append(
                f'<rect x="{x0 + 2 + j * bar_w:.1f}" y="{base_y - h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}" fill="{colours[j % 3]}"><title>{_e(name)} {b * step:.2f}–'
                f"{(b + 1) * step:.2f} s: {n}</title></rect>"
            )
        if b % max(1, nbins // 6) == 0:
            out.append(
                f'<text x="{x0:.1f}" y="{base_y + 16}" text-anchor="middle" fill="#667">{b * step:g}</text>'
            )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 2}" text-anchor="middle" fill="#667">'
        "seconds</text></svg>"
    )
    return "".join(out)


def _nice_step(raw: float) -> float:
    exp = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * exp:
            return mult * exp
    return 10 * exp


def to_html(report: EvaluationReport) -> str:
    c = report.counts
    s = report.summary
    base = {row["metric"]: row["old"] for row in (report.baseline or {}).get("rows", [])}
    cards = [
        ("questions", str(c["questions"]), f"{c['unanswerable']} unanswerable, {c['follow_ups']} follow-ups"),
        ("hit@k", fmt_value("hit_at_k", s.get("hit_at_k")), f"k = {report.k}"),
        ("must include", fmt_value("must_include", s.get("must_include")), "answer_must_include"),
        ("groundedness", fmt_value("groundedness", s.get("groundedness")), "sentences supported"),
        ("declined when unanswerable", fmt_value("x", s.get("declined_when_unanswerable")), "refusals"),
        ("total p95", fmt_value("total_p95_s", s.get("total_p95_s")), "latency"),
    ]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Evaluation: {_e(report.name)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>Evaluation: {_e(report.name)}</h1><p class='meta'>",
        f"<span>{_e(report.created_at)}</span><span>answers: {_e(report.mode)}"
        f"{' (' + _e(report.model) + ')' if report.model else ''}</span>",
        f"<span>corpus: {_e(report.corpus.get('documents', 0))} documents, "
        f"{_e(report.corpus.get('chunks', 0))} "
        f"chunks, <code>{_e(report.corpus.get('fingerprint', ''))}</code></span>",
        f"<span>questions: <code>{_e(report.questions_file)}</code> ({_e(report.format)})</span></p>",
    ]
    parts += [f"<div class='note'>{_e(n)}</div>" for n in report.notes]
    parts.append("<div class='cards'>")
    parts += [
        f"<div class='card'><small>{_e(t)}</small><b>{_e(v)}</b><small>{_e(h)}</small></div>"
        for t, v, h in cards
        if v != "–"
    ]
    parts.append("</div>")

    if report.baseline:
        b = report.baseline
        regs = b["regressions"]
        parts.append(
            f"<h2>Compared with the baseline</h2><p class='meta'>{_e(b['file'])} ({_e(b['created_at'])}, "
            f"{_e(b['mode'])}). "
            + (
                f"<span class='bad'>{len(regs)} regression(s): "
                f"{_e(', '.join(METRICS[r].label for r in regs))}</span>"
                if regs
                else "<span class='good'>No regressions.</span>"
            )
            + "</p>"
        )
        if not b["same_corpus"]:
            parts.append("<div class='note'>The corpus differs from the baseline's.</div>")
        if not b["same_questions"]:
            parts.append("<div class='note'>The question ids differ from the baseline's.</div>")
        parts.append("<table><tr><th>metric</th><th>baseline</th><th>now</th><th>delta</th><th></th></tr>")
        for row in b["rows"]:
            name = row["metric"]
            cls = "bad" if row["regression"] else "good" if row["improvement"] else ""
            flag = "regression" if row["regression"] else "improved" if row["improvement"] else ""
            parts.append(
                f"<tr><td>{_e(METRICS[name].label)}</td><td class='num'>{fmt_value(name, row['old'])}</td>"
                f"<td class='num'>{fmt_value(name, row['new'])}</td>"
                f"<td class='num {cls}'>{fmt_delta(name, row['delta'])}</td>"
                f"<td class='{cls}'>{flag}</td></tr>"
            )
        parts.append("</table>")
        if b["questions_worse"]:
            parts.append(
                "<p>Questions that got worse: "
                + ", ".join(
                    f"<code>{_e(w['id'])}</code> ({w['old']:.2f} → {w['new']:.2f})"
                    for w in b["questions_worse"]
                )
                + "</p>"
            )

    bars = [
        (METRICS[name].label, v, base.get(name))
        for name, info, v, _ in _summary_rows(report)
        if info.unit == "rate" and info.higher_is_better
    ]
    parts.append("<h2>Metrics</h2>")
    if bars:
        parts.append(bar_chart(bars))
        if base:
            parts.append("<p class='meta'>The dark tick on each bar is the baseline.</p>")
    parts.append("<table><tr><th>metric</th><th>value</th><th>n</th><th>what it measures</th></tr>")
    for name, info, value, n in _summary_rows(report):
        parts.append(
            f"<tr><td>{_e(info.label)} <code>{name}</code></td><td class='num'>{fmt_value(name, value)}</td>"
            f"<td class='num'>{'' if n is None else n}</td><td>{_e(info.help)}</td></tr>"
        )
    parts.append("</table>")

    parts.append("<h2>Latency</h2>")
    series = {
        "first token": [
            r.timings["first_token_s"] for r in report.results if r.timings.get("first_token_s") is not None
        ],
        "total": [r.timings["total_s"] for r in report.results if r.timings.get("total_s") is not None],
    }
    parts.append(histogram(series))
    parts.append(
        f"<p class='meta'>first token p50 {fmt_value('first_token_p50_s', s.get('first_token_p50_s'))}, "
        f"p95 {fmt_value('first_token_p95_s', s.get('first_token_p95_s'))}; total p50 "
        f"{fmt_value('total_p50_s', s.get('total_p50_s'))}, "
        f"p95 {fmt_value('total_p95_s', s.get('total_p95_s'))}"
        f" (concurrent questions share the CPU).</p>"
    )

    parts.append("<h2>Worst questions</h2>")
    for r in worst(report):
        parts.append(_question_html(r))

    parts.append(
        "<h2>All questions</h2><table><tr><th>id</th><th>question</th><th>expected</th><th>declined</th>"
        "<th>must</th><th>F1</th><th>sim</th><th>hit@k</th><th>grounded</th><th>total</th></tr>"
    )
    for r in report.results:
        g = r.metrics.get
        wrong = r.declined == r.answerable
        parts.append(
            f"<tr><td><code>{_e(r.id)}</code></td><td>{_e(_one_line(r.question, 120))}</td>"
            f"<td>{'answer' if r.answerable else 'decline'}</td>"
            f"<td class='{'bad' if wrong else ''}'>{'yes' if r.declined else 'no'}</td>"
            + "".join(
                f"<td class='num'>{fmt_value(k, g(k))}</td>"
                for k in ("must_include", "f1", "semantic_similarity", "hit_at_k", "groundedness")
            )
            + f"<td class='num'>{fmt_value('total_p50_s', r.timings.get('total_s'))}</td></tr>"
        )
    parts.append("</table>")
    parts.append("<h2>Settings</h2><table>")
    for key, value in sorted(report.settings.items()):
        parts.append(f"<tr><td><code>{_e(key)}</code></td><td>{_e(value)}</td></tr>")
    parts.append("</table></main></body></html>")
    return "\n".join(parts)


def _question_html(r) -> str:
    out = [
        f"<div class='q'><h3><code>{_e(r.id)}</code> {_e(r.question)} "
        f"<small>(quality {r.quality:.2f})</small></h3>"
    ]
    if r.history:
        out.append(
            "<p class='meta'>after: "
            + " / ".join(f"{_e(t['role'])}: {_e(_one_line(t['content'], 100))}" for t in r.history)
            + "</p>"
        )
    if r.standalone_question and r.standalone_question != r.question:
        out.append(f"<p class='meta'>asked as: {_e(r.standalone_question)}</p>")
    expected = "decline (unanswerable)" if not r.answerable else "; ".join(r.reference_answer) or "an answer"
    out.append(f"<p><b>expected:</b> {_e(expected)}</p>")
    out.append(f"<p><b>answer{_e(_answer_label(r))}:</b></p><div class='ans'>{_e(r.answer)}</div>")
    if r.error:
        out.append(f"<p class='bad'>error: {_e(r.error)}</p>")
    if r.missing:
        out.append(f"<p class='bad'>missing: {_e(', '.join(' / '.join(g) for g in r.missing))}</p>")
    if r.metrics:
        out.append("<p class='meta'>" + ", ".join(f"{_e(k)} {v:.2f}" for k, v in r.metrics.items()) + "</p>")
    if r.judge_reason:
        out.append(f"<p class='meta'>judge: {_e(r.judge_reason)}</p>")
    if r.passages:
        out.append(f"<details><summary>{len(r.passages)} retrieved passages</summary>")
        for p in r.passages:
            cls = {True: "rel", False: "irr", None: ""}[p.relevant]
            mark = {True: " ✓ relevant", False: " ✗ not relevant", None: ""}[p.relevant]
            out.append(
                f"<div class='p {cls}'><b>[{p.n}] {_e(p.location)}</b> score {p.score:.3f}{mark}\n"
                f"{_e(p.text)}</div>"
            )
        out.append("</details>")
    out.append("</div>")
    return "".join(out)
