"""Tiny hand-written PDFs for tests: real text streams, no PDF library needed to write them."""

from __future__ import annotations


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]], info: dict[str, str] | None = None) -> bytes:
    """A valid PDF with one Helvetica text line per string, one page per list.

    Args:
        pages: The lines of each page.
        info: Document information entries (``Title``, ``Author``...).

    Returns:
        The PDF file's bytes, with a correct cross-reference table.
    """
    body: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids: list[int] = []
    number = 4
    for lines in pages:
        ops = [
            "BT /F1 12 Tf 14 TL 72 720 Td",
            *(f"({_escape(line)}) Tj T*" for line in lines),
            "ET",
        ]
        stream = "\n".join(ops).encode("latin-1")
        body[number] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (number + 1)
        )
        body[number + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
        kids.append(number)
        number += 2
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    body[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    info_ref = b""
    if info:
        entries = b" ".join(
            b"/%s (%s)" % (key.encode(), _escape(value).encode("latin-1"))
            for key, value in info.items()
        )
        body[number] = b"<< " + entries + b" >>"
        info_ref = b" /Info %d 0 R" % number
        number += 1

    out = bytearray(b"%PDF-1.4\n")
    offsets: dict[int, int] = {}
    for obj in range(1, number):
        offsets[obj] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (obj, body[obj])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % number
    for obj in range(1, number):
        out += b"%010d 00000 n \n" % offsets[obj]
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        number,
        info_ref,
        xref,
    )
    return bytes(out)
