"""Text from images, offline: Debian's Tesseract (``tesseract-ocr`` + ``tesseract-ocr-eng``) run
as a subprocess, one page image at a time.

Used by the loaders for a PDF page with no text layer (its embedded images) and for image files
(PNG, JPEG, TIFF; a multi-page TIFF page by page). Chosen by ``python -m benchmarks.ocr``: on
rendered noisy, rotated, blurred and JPEG-compressed pages it read as accurately as RapidOCR at
several times the speed, with no new Python packages (see the README).

Bounded: an image's pixel count is checked from its header (or the PDF image's dictionary)
before any pixel is decoded; each page gets at most the time left before the file's deadline;
Tesseract runs with one OpenMP thread (``OMP_THREAD_LIMIT=1``, passive waits), so OCR takes one
core and never stalls the web app on a small machine.

Errors are this module's own (the loaders turn them into ``SkipFile``/``LoadError``):
``NoEngine`` (Tesseract or its English data is not installed), ``ImageRefused`` (too many
pixels, too many pages) and ``OcrFailed`` (an image that cannot be decoded, Tesseract failing or
running out of time).
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image
    from pypdf import PageObject

INSTALL = "apt-get install tesseract-ocr tesseract-ocr-eng"
LANGUAGE = "eng"
MAX_PIXELS = 50_000_000  # a 600-dpi A4 page is 35 million; a decompression bomb is billions
PAGE_SECONDS = 600.0  # the most one image may take when the file has no deadline
DENOISE_RADIUS = 0.6  # pixels
MIN_SIDE = 16  # smaller images (rules, dots, tiny icons) hold no readable text
FORMATS = ("PNG", "JPEG", "TIFF")  # what Pillow may decode for an image file (JPEG covers MPO)
# One core, and no spinning while idle: OpenMP's defaults would take every core.
_ENV = {"OMP_THREAD_LIMIT": "1", "OMP_WAIT_POLICY": "PASSIVE"}


class NoEngine(Exception):
    """Tesseract (or its English data) is missing; the message says what to install."""


class ImageRefused(Exception):
    """The image is deliberately not read: too many pixels or pages."""


class OcrFailed(Exception):
    """The image cannot be decoded, or Tesseract failed or ran out of time."""


class OcrTimeout(OcrFailed):
    """Tesseract ran past the time it was given."""


@functools.cache
def _tesseract() -> str:
    """The Tesseract binary with its English data, or ``NoEngine`` (looked up once a process)."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise NoEngine(f"Tesseract is not installed: {INSTALL}")
    try:
        found = subprocess.run(
            [binary, "--list-langs"], capture_output=True, text=True, timeout=60, env=_env()
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise NoEngine(f"Tesseract does not start ({_short(exc)}): {INSTALL}") from None
    if LANGUAGE not in found.stdout.split():
        raise NoEngine("Tesseract's English data is not installed: apt-get install tesseract-ocr-eng")
    return binary


def available() -> str | None:
    """None when OCR can run here, else the reason it cannot (with what to install)."""
    try:
        _tesseract()
    except NoEngine as exc:
        return str(exc)
    return None


def _env() -> dict[str, str]:
    return {**os.environ, **_ENV}


def check_pixels(width: int, height: int, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse an image with more than ``max_pixels`` before any of it is decoded."""
    if width * height > max_pixels:
        raise ImageRefused(
            f"image too large: {width:,} x {height:,} pixels ({width * height / 1e6:,.0f} MP) > "
            f"{max_pixels / 1e6:g} MP limit (a decompression bomb?)"
        )


def image_text(
    image: Image.Image, *, deadline: float | None = None, dpi: float | None = None, where: str = ""
) -> str:
    """The text Tesseract reads in ``image`` (as it prints it: lines, blank lines between blocks).

    ``deadline`` is a ``time.monotonic()`` time: the run is stopped there (``OcrTimeout``);
    ``dpi`` the image's resolution when known (Tesseract guesses otherwise); ``where`` names the
    image in error messages ("page 3")."""
    binary = _tesseract()
    png = io.BytesIO()
    _prepared(image).save(png, "PNG", compress_level=1)
    timeout = PAGE_SECONDS if deadline is None else min(PAGE_SECONDS, deadline - time.monotonic())
    if timeout <= 0:
        raise OcrTimeout(f"OCR{where and ' of ' + where}: no time left")
    command = [binary, "stdin", "stdout", "-l", LANGUAGE]
    if dpi and 70 <= dpi <= 2400:
        command += ["--dpi", str(round(dpi))]
    try:
        done = subprocess.run(command, input=png.getvalue(), capture_output=True, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired:
        raise OcrTimeout(f"OCR{where and ' of ' + where} took over {timeout:.0f} s") from None
    except OSError as exc:
        raise OcrFailed(f"OCR{where and ' of ' + where} could not start Tesseract: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.decode(errors="replace").splitlines() if line.strip()]
        detail = lines[-1].strip()[:120] if lines else f"exit status {done.returncode}"
        raise OcrFailed(f"OCR{where and ' of ' + where} failed: {detail}")
    return done.stdout.decode("utf-8", errors="replace")


def _prepared(image: Image.Image) -> Image.Image:
    """Greyscale (transparency flattened onto white), lightly smoothed: Tesseract's own
    thresholding breaks letters apart on a noisy scan, and a 0.6-pixel blur first took a page
    with heavy noise from 88% to 99.8% of characters right while costing screenshots 0.1%
    (``python -m benchmarks.ocr``)."""
    from PIL import Image, ImageFilter

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, "white")
        flat.alpha_composite(rgba)
        image = flat
    elif image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit or float scans: to 8 bits
        lo, hi = image.getextrema()
        scale = 255 / (hi - lo) if hi > lo else 1
        image = image.point(lambda v: (v - lo) * scale)
    return image.convert("L").filter(ImageFilter.GaussianBlur(DENOISE_RADIUS))


# --- images in a PDF page ------------------------------------------------------------------------


def pdf_page_text(
    page: PageObject, *, max_pixels: int = MAX_PIXELS, deadline: float | None = None, where: str = ""
) -> str:
    """The text of a PDF page with no text layer, read from its images (a scan is usually one
    image filling the page; strips or pieces are read in turn). Each image's size is checked
    from its dictionary before it is decoded; the page's ``/Rotate`` is applied."""
    try:
        images = page.images
        ids = list(images.keys())
    except Exception as exc:  # noqa: BLE001  (pypdf errors on damaged resources)
        raise OcrFailed(f"{where}: cannot list its images: {_short(exc)}") from None
    sizes = [size for size in (_declared_size(page, i) for i in ids) if size is not None]
    for size in sizes:
        check_pixels(*size, max_pixels)
    total = sum(width * height for width, height in sizes)
    if total > max_pixels:  # many images, each under the limit
        raise ImageRefused(
            f"images too large: {len(sizes):,} images of {total / 1e6:,.0f} MP in all > "
            f"{max_pixels / 1e6:g} MP limit (a decompression bomb?)"
        )
    texts = []
    for image_id in ids:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = images[image_id].image
        except Exception as exc:  # noqa: BLE001  (a filter pypdf cannot decode, damaged data)
            raise OcrFailed(f"{where}: cannot decode its image: {_short(exc)}") from None
        if image is None or min(image.size) < MIN_SIDE:
            continue
        check_pixels(*image.size, max_pixels)  # inline images have no dictionary to check first
        image = _rotated(image, page)
        texts.append(image_text(image, deadline=deadline, dpi=_pdf_dpi(page, image), where=where))
    return "\n\n".join(texts)


def _declared_size(page: PageObject, image_id: str | list[str]) -> tuple[int, int] | None:
    """(width, height) from an image XObject's dictionary, None for inline or odd ones."""
    path = [image_id] if isinstance(image_id, str) else list(image_id)
    if path[0].startswith("~"):  # inline image: decoded with the content stream, bounded by pypdf
        return None
    try:
        obj = page
        for name in path:
            obj = obj["/Resources"].get_object()["/XObject"].get_object()[name].get_object()
        return int(obj["/Width"]), int(obj["/Height"])
    except Exception:  # noqa: BLE001  (a damaged dictionary: the decoded size is checked instead)
        return None


def _rotated(image: Image.Image, page: PageObject) -> Image.Image:
    from PIL import Image

    turn = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
    try:
        rotation = page.rotation % 360
    except Exception:  # noqa: BLE001
        return image
    return image.transpose(turn[rotation]) if rotation in turn else image


def _pdf_dpi(page: PageObject, image: Image.Image) -> float | None:
    """The resolution of an image that fills the page's width (a scan), else None."""
    try:
        box = page.mediabox
        width_pt = float(box.height if page.rotation % 180 else box.width)
    except Exception:  # noqa: BLE001
        return None
    return image.width * 72 / width_pt if width_pt > 0 else None


# --- image files ---------------------------------------------------------------------------------


def image_file_pages(
    raw: bytes, *, max_pixels: int = MAX_PIXELS, max_pages: int | None = None, deadline: float | None = None
) -> tuple[int, Iterator[str]]:
    """(page count, each page's text as it is read) of a PNG, JPEG or TIFF file. The header is
    read and judged now (format, pixels, pages); pages are decoded and read one at a time."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow warns from 89 MP; the check below refuses sooner
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=FORMATS)
        count = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
    except Image.DecompressionBombError:  # Pillow's own check, from 179 MP
        raise ImageRefused(
            f"image too large: over the {max_pixels / 1e6:g} MP limit (a decompression bomb?)"
        ) from None
    except UnidentifiedImageError:
        raise OcrFailed("not a PNG, JPEG or TIFF image (or a damaged one)") from None
    except Exception as exc:  # noqa: BLE001  (Pillow raises many kinds on a damaged header)
        raise OcrFailed(f"corrupt image: {_short(exc)}") from None
    check_pixels(*image.size, max_pixels)
    if max_pages is not None and count > max_pages:
        raise ImageRefused(f"too many pages: {count:,} > {max_pages:,} limit (ASSISTANT_MAX_PDF_PAGES)")

    def pages() -> Iterator[str]:
        for number in range(count):
            where = f"page {number + 1}" if count > 1 else ""
            try:
                image.seek(number)
                check_pixels(*image.size, max_pixels)
                dpi = image.info.get("dpi", (None,))[0]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    frame = ImageOps.exif_transpose(image) if image.format != "TIFF" else image.copy()
            except ImageRefused:
                raise
            except Exception as exc:  # noqa: BLE001  (truncated or damaged pixel data)
                raise OcrFailed(f"corrupt image{where and ': ' + where}: {_short(exc)}") from None
            yield image_text(frame, deadline=deadline, dpi=float(dpi) if dpi else None, where=where)

    return count, pages()


def _short(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:160]
