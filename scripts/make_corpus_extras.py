"""Writes the shipped corpus's slide deck and spreadsheet from the INNAXE article's own facts.

    python scripts/make_corpus_extras.py [FOLDER]   # writes innaxe-results-slides.pptx and
                                                    # innaxe-partners.xlsx into corpus/ (or FOLDER)

They show the PowerPoint and Excel loaders on the shipped corpus (citations such as "slide 3" and
"sheet Results, rows 2-6"). Every fact is in corpus/innaxe-cluster-collaboration-results.txt;
nothing is added (no countries, dates or people the article does not give). The files are the
same byte for byte on every run, so re-running the script changes nothing in git and nothing to
re-index: the properties carry no created or modified date (a date there would be one the article
does not give) and the zip members carry the zip format's earliest, 1980-01-01, which says "no
date" as reproducible builds use it.
"""

from __future__ import annotations

import re
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import openpyxl
import pptx
from pptx.slide import Slide
from pptx.util import Inches, Pt

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
NO_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip member can carry

PARTNERS = [
    "BIOCAT",
    "Medicen Paris Region",
    "BioRN",
    "Health & Life Sciences Cluster Bulgaria",
    "Council of European BioRegions",
    "Danish Life Science Cluster",
]
ENGAGEMENT = [
    ("Meetings with leading European opinion leaders", 31),
    ("Responses from European SMEs, researchers and health professionals in the joint survey", 91),
    ("Participants in co-creation activities", 79),
]
JOINT_PROGRAMME = (
    "The consortium has developed a 'Joint Programme' which, based on nine selected topics, will "
    "ensure collaboration between the clusters for the next five years."
)


def slides() -> bytes:
    deck = pptx.Presentation()
    deck.core_properties.title = "INNAXE: European cluster collaboration results"
    deck.core_properties.last_modified_by = ""  # python-pptx's template names its own author

    def slide(title: str, lines: list[str], notes: str = "") -> Slide:
        page = deck.slides.add_slide(deck.slide_layouts[1 if lines else 5])  # Title and Content / Title Only
        page.shapes.title.text = title
        if lines:
            page.placeholders[1].text = "\n".join(lines)
        if notes:
            page.notes_slide.notes_text_frame.text = notes
        return page

    first = deck.slides.add_slide(deck.slide_layouts[0])  # Title Slide
    first.shapes.title.text = "European cluster collaboration for innovation in life sciences and biotech"
    first.placeholders[1].text = "INNAXE, a Horizon Europe (EIE) project co-financed by the European Union"
    slide(
        "The INNAXE consortium",
        ["Six European partners:", *PARTNERS],
        notes="For two years, Danish Life Science Cluster and 5 other European clusters have collaborated "
        "to streamline and accelerate innovation among companies and researchers in Europe.",
    )
    engagement = slide(
        "Engagement of European actors",
        [],
        notes="The six partners met and presented the project's results in connection with the Spinoff "
        "Bulgaria conference in June 2024.",
    )
    rows = [("Activity", "Result"), *ENGAGEMENT]
    table = engagement.shapes.add_table(len(rows), 2, Inches(0.5), Inches(1.8), Inches(9), Inches(3)).table
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = str(value)
            table.cell(r, c).text_frame.paragraphs[0].runs[0].font.size = Pt(16)
    slide(
        "Sustainable results and long-term effect",
        [
            JOINT_PROGRAMME,
            "The project officially ends in June 2024; the consortium members will continue to ensure "
            "its impact in the coming years.",
        ],
    )
    slide(
        "Further material",
        [
            "Executive summary: 9 activities for European Life Science Actors, for long-term collaboration "
            "and impact",
            "Guidelines for Ecosystem Monitoring, Benchmarking, and Impact Evaluation Results",
        ],
    )
    out = BytesIO()
    deck.save(out)
    return out.getvalue()


def workbook() -> bytes:
    book = openpyxl.Workbook()
    book.properties.title = "INNAXE partners and results"
    partners = book.active
    partners.title = "Partners"
    partners.append(["Partner", "Consortium", "Note"])
    for name in PARTNERS:
        partners.append([name, "INNAXE", None])
    partners["C7"] = (
        "Has received the highest European recognition for the cluster's work; "
        "Karen Lindegaard is its international programme manager"
    )
    results = book.create_sheet("Results")
    results.append(["Result", "Figure"])
    for activity, figure in ENGAGEMENT:
        results.append([activity, figure])
    results.append(["Selected topics in the Joint Programme", 9])
    results.append(["Years of collaboration the Joint Programme ensures", 5])
    for sheet in (partners, results):
        sheet.column_dimensions["A"].width = 60
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def reproducible(package: bytes) -> bytes:
    """The same zip with no dates: the core properties' created and modified dates are left out
    (both are optional) and every member carries ``NO_DATE``."""
    src = zipfile.ZipFile(BytesIO(package))
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = re.sub(rb"<dcterms:(created|modified)\b[^>]*>[^<]*</dcterms:\1>", b"", data)
            dst.writestr(zipfile.ZipInfo(item.filename, date_time=NO_DATE), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def main(folder: Path = CORPUS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, build in (("innaxe-results-slides.pptx", slides), ("innaxe-partners.xlsx", workbook)):
        (folder / name).write_bytes(reproducible(build()))
        print(f"wrote {folder / name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS)
