"""OCR engines on rendered scanned pages: pages per second and character accuracy, one core.

    python -m benchmarks.ocr [--engines tesseract,tesseract-raw,rapidocr] [--pages-per-kind 2] [--out DIR]
    # RapidOCR is not a dependency: measure it from a scratch venv
    python3 -m venv /tmp/ocr && /tmp/ocr/bin/pip install rapidocr-onnxruntime pillow numpy
    PYTHONPATH=. /tmp/ocr/bin/python -m benchmarks.ocr --engines rapidocr

Each page is an A4 page of several paragraphs of real prose (the Paul Graham essays in the shared
eval data, else the shipped corpus), drawn with Pillow in a DejaVu font, then degraded as a
scanner or a phone would:

- ``clean 300 dpi``: serif 11 pt, nothing else (the ceiling);
- ``noisy 300 dpi``: serif 11 pt, Gaussian noise (sigma 45 grey levels), rotated 1.2 degrees,
  blurred (radius 0.9);
- ``noisy 200 dpi small``: sans 9.5 pt at 200 dpi, noise (sigma 35), rotated -0.7 degrees, blurred (0.6);
- ``noisy 300 dpi JPEG q30``: the noisy 300-dpi page saved as a JPEG of quality 30.

Engines: ``tesseract`` through ``ingest.ocr`` (the code ingestion runs: Debian's
``tesseract-ocr`` + ``tesseract-ocr-eng``, one OpenMP thread, a 0.6-pixel blur first),
``tesseract-raw`` (the same without the blur) and ``rapidocr``
(``rapidocr-onnxruntime``, when it is importable; ONNX Runtime limited to one thread). Accuracy is
1 - Levenshtein distance / length of the true text, both whitespace-normalised (rapidfuzz when
installed, else an exact pure-Python distance). Time is the wall time of one page's OCR, the
image already in memory. Prints a table per engine and page kind and writes ``ocr.json``
under ``--out`` (default ``test-output/benchmarks``).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

REPO = Path(__file__).resolve().parent.parent
ESSAYS = REPO.parent / "shared" / "eval-data" / "paul_graham_essays" / "paul_graham_essays"
A4_INCHES = (8.27, 11.69)
MARGIN_INCHES = 1.0

# name -> (dpi, font, size in points, noise sigma, rotation in degrees, blur radius, JPEG quality)
KINDS: dict[str, tuple[int, str, float, float, float, float, int | None]] = {
    "clean 300 dpi": (300, "DejaVuSerif.ttf", 11, 0, 0, 0, None),
    "noisy 300 dpi": (300, "DejaVuSerif.ttf", 11, 45, 1.2, 0.9, None),
    "noisy 200 dpi small": (200, "DejaVuSans.ttf", 9.5, 35, -0.7, 0.6, None),
    "noisy 300 dpi JPEG q30": (300, "DejaVuSerif.ttf", 11, 45, 1.2, 0.9, 30),
}


def font_path(name: str) -> Path:
    """A DejaVu font file: fontconfig's answer, else Debian's usual place."""
    try:
        found = subprocess.run(["fc-match", "-f", "%{file}", name.removesuffix(".ttf")], capture_output=True)
        path = Path(found.stdout.decode().strip())
        if path.name == name:
            return path
    except OSError:
        pass
    for folder in (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")):
        if (folder / name).is_file():
            return folder / name
    raise SystemExit(f"font {name} not found: apt-get install fonts-dejavu-core")


def documents() -> list[list[str]]:
    """Real prose: per essay (with at least 600 words), its paragraphs of 40 to 90 words, built
    from whole sentences (the essays' own paragraphs are often a page long)."""
    files = sorted(ESSAYS.glob("*.txt")) or sorted((REPO / "corpus").glob("*.txt"))
    out = []
    for path in files:
        text = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
        if len(text.split()) < 600 or any(ord(c) >= 0x250 and c not in "‘’“”–—…" for c in text):
            continue
        paragraphs, current = [], []
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text):
            current.append(sentence)
            if len(" ".join(current).split()) >= 40 + 10 * (len(paragraphs) % 5):
                paragraphs.append(" ".join(current))
                current = []
        out.append(paragraphs[1:])  # the first holds the essay's title and date
    return out


def render_page(texts: list[str], dpi: int, font_file: Path, points: float) -> tuple[Image.Image, str]:
    """An A4 page of as many of ``texts`` as fit, wrapped at spaces; returns the page and the
    text exactly as drawn (lines joined by spaces, paragraphs by blank lines)."""
    width, height = (round(x * dpi) for x in A4_INCHES)
    margin = round(MARGIN_INCHES * dpi)
    font = ImageFont.truetype(str(font_file), round(points * dpi / 72))
    line_height = round(points * 1.45 * dpi / 72)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    y, drawn = margin, []
    for text in texts:
        lines, line = [], ""
        for word in text.split():
            candidate = f"{line} {word}".strip()
            if line and draw.textlength(candidate, font=font) > width - 2 * margin:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
        if y + line_height * len(lines) > height - margin:
            break
        for line in lines:
            draw.text((margin, y), line, font=font, fill=0)
            y += line_height
        y += line_height // 2
        drawn.append(" ".join(lines))
    return page, "\n\n".join(drawn)


def add_noise(page: Image.Image, sigma: float) -> Image.Image:
    """``page`` plus zero-mean Gaussian noise of ``sigma`` grey levels, clipped to 0-255."""
    import numpy as np

    rng = np.random.default_rng(int(sigma * 1000) + page.size[0])
    pixels = np.asarray(page, dtype=np.float32) + rng.normal(0, sigma, (page.size[1], page.size[0]))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")


def make_pages(per_kind: int) -> list[tuple[str, Image.Image, str]]:
    """(kind, image, true text) for every kind, ``per_kind`` pages each, each page other prose."""
    essays = documents()
    rng = random.Random(12)
    pages = []
    for kind, (dpi, font, points, sigma, angle, blur, quality) in KINDS.items():
        for _ in range(per_kind):
            texts = essays[rng.randrange(len(essays))]
            page, truth = render_page(texts, dpi, font_path(font), points)
            if angle:
                page = page.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
            if blur:
                page = page.filter(ImageFilter.GaussianBlur(blur))
            if sigma:
                page = add_noise(page, sigma)
            if quality:
                buffer = io.BytesIO()
                page.save(buffer, "JPEG", quality=quality)
                page = Image.open(io.BytesIO(buffer.getvalue()))
                page.load()
            page.info["dpi"] = (dpi, dpi)
            pages.append((kind, page, truth))
    return pages


def normalised(text: str) -> str:
    return " ".join(text.replace("-\n", "").split())


def levenshtein(a: str, b: str) -> int:
    try:
        from rapidfuzz.distance import Levenshtein

        return Levenshtein.distance(a, b)
    except ImportError:
        pass
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def accuracy(got: str, truth: str) -> float:
    got, truth = normalised(got), normalised(truth)
    return max(0.0, 1 - levenshtein(got, truth) / max(len(truth), 1))


def tesseract_engine():
    from ingest import ocr

    reason = ocr.available()
    if reason:
        return None, reason

    def read(image: Image.Image) -> str:
        return ocr.image_text(image, dpi=image.info["dpi"][0])

    return read, "Tesseract " + _tesseract_version()


def tesseract_raw_engine():
    """Tesseract on the page as it is (no smoothing): what ``ingest.ocr``'s blur is measured against."""
    from ingest import ocr

    reason = ocr.available()
    if reason:
        return None, reason

    def read(image: Image.Image) -> str:
        png = io.BytesIO()
        image.convert("L").save(png, "PNG", compress_level=1)
        command = ["tesseract", "stdin", "stdout", "-l", "eng", "--dpi", str(image.info["dpi"][0])]
        env = {"PATH": "/usr/bin:/bin", "OMP_THREAD_LIMIT": "1"}
        return subprocess.run(command, input=png.getvalue(), capture_output=True, env=env).stdout.decode()

    return read, "Tesseract " + _tesseract_version() + " without the blur"


def _tesseract_version() -> str:
    out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout
    return out.split()[1] if out else "?"


def rapidocr_engine():
    try:
        import numpy as np
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return None, "rapidocr-onnxruntime is not installed"
    from importlib.metadata import version

    engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)

    def read(image: Image.Image) -> str:
        result, _ = engine(np.asarray(image.convert("RGB")))
        return "\n".join(text for _, text, _ in result or [])

    return read, "rapidocr-onnxruntime " + version("rapidocr-onnxruntime")


ENGINES = {"tesseract": tesseract_engine, "tesseract-raw": tesseract_raw_engine, "rapidocr": rapidocr_engine}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engines", default="tesseract,tesseract-raw,rapidocr")
    ap.add_argument("--pages-per-kind", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "test-output" / "benchmarks")
    ap.add_argument("--save-pages", action="store_true", help="write the rendered pages as PNG under --out")
    args = ap.parse_args(argv)
    pages = make_pages(args.pages_per_kind)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.save_pages:
        for n, (kind, image, _) in enumerate(pages):
            image.save(args.out / f"ocr-page-{n:02d}-{kind.replace(' ', '-')}.png")
    results = {}
    for name in args.engines.split(","):
        read, label = ENGINES[name]()
        if read is None:
            print(f"{name}: skipped ({label})", file=sys.stderr)
            continue
        read(pages[0][1].crop((0, 0, 600, 600)))  # load models / warm the page cache once
        rows = []
        for kind, image, truth in pages:
            started = time.perf_counter()
            text = read(image)
            seconds = time.perf_counter() - started
            rows.append(
                {"kind": kind, "seconds": seconds, "accuracy": accuracy(text, truth), "chars": len(truth)}
            )
        results[name] = {"engine": label, "pages": rows}
    print(f"{'engine':<14} {'page kind':<24} {'pages':>5} {'s/page':>7} {'pages/s':>8} {'accuracy':>9}")
    for name, result in results.items():
        kinds = dict.fromkeys(r["kind"] for r in result["pages"])
        for kind in [*kinds, "all"]:
            rows = [r for r in result["pages"] if kind in ("all", r["kind"])]
            seconds = sum(r["seconds"] for r in rows)
            mean = sum(r["accuracy"] for r in rows) / len(rows)
            low = min(r["accuracy"] for r in rows)
            print(
                f"{name:<14} {kind:<24} {len(rows):>5} {seconds / len(rows):>7.2f} "
                f"{len(rows) / seconds:>8.2f} {mean:>9.4f}" + (f" (min {low:.4f})" if kind == "all" else "")
            )
    (args.out / "ocr.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
