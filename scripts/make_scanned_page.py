"""Write ``corpus/innaxe-guidelines-scanned.pdf``: a scanned page (one image, no text layer) made
only from facts in the shipped article ``corpus/innaxe-cluster-collaboration-results.txt``,
so the shipped corpus shows OCR at work (citations read "..., p. 1 (OCR)").

    .venv/bin/python scripts/make_scanned_page.py [--out PATH]

The page is A4 at 200 dpi in DejaVu Serif (Pillow's own font when DejaVu is not installed),
turned 0.6 degrees, lightly blurred and given a touch of Gaussian noise with a fixed seed, then
saved as a greyscale JPEG inside a PDF by Pillow. Rerunning writes the same bytes (with the
same fonts and Pillow).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "corpus" / "innaxe-guidelines-scanned.pdf"
TITLE = "Guidelines and executive summary"
# Every sentence restates the article; nothing is added. Chosen among its facts that the shipped
# question set (evals/innaxe.yaml) and the app tests do not ask about, so the article stays the
# first source for those, and the scanned page answers questions of its own.
PARAGRAPHS = [
    "INNAXE, a Horizon Europe (EIE) project, has analysed which actions create value for the "
    "benefit of the European life science ecosystem.",
    "The results are compiled in the 'Guidelines for Ecosystem Monitoring, Benchmarking, and "
    "Impact Evaluation Results'. The analysis can be downloaded for free.",
    "Executive summary: 9 activities for European Life Science Actors, for long-term "
    "collaboration and impact.",
]
DPI = 200


def font(points: float, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVu Serif:bold" if bold else "DejaVu Serif"
    size = round(points * DPI / 72)
    try:
        found = subprocess.run(["fc-match", "-f", "%{file}", name], capture_output=True, text=True).stdout
        if found.endswith(".ttf") and "DejaVuSerif" in found:
            return ImageFont.truetype(found, size)
    except OSError:
        pass
    return ImageFont.load_default(size=size)


def page() -> Image.Image:
    width, height = round(8.27 * DPI), round(11.69 * DPI)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    x, y = DPI, DPI
    heading, body = font(15, bold=True), font(12)
    draw.text((x, y), TITLE, font=heading, fill=0)
    y += round(15 * 2.2 * DPI / 72)
    line_height = round(12 * 1.5 * DPI / 72)
    for paragraph in PARAGRAPHS:
        for line in textwrap.wrap(paragraph, width=68, break_on_hyphens=False):
            draw.text((x, y), line, font=body, fill=0)
            y += line_height
        y += line_height // 2
    image = image.rotate(0.6, resample=Image.Resampling.BICUBIC, fillcolor=255)
    image = image.filter(ImageFilter.GaussianBlur(0.5))
    noise = np.random.default_rng(2024).normal(0, 10, (height, width))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    fixed = time.strptime("2024-06-30", "%Y-%m-%d")  # not today: the same bytes on every run
    page().save(args.out, "PDF", resolution=DPI, quality=60, title=TITLE, creationDate=fixed, modDate=fixed)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
