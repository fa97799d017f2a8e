"""Render generated derivation pages as a reader sees them: Markdown to HTML (markdown-it-py, GitHub
flavoured tables), every math fragment typeset by MathJax (as GitHub does), then a screenshot of each
page in headless Chromium.

    python tools/render_docs.py docs/losses/smooth_l1_loss.md docs/losses/cross_entropy.md --out /tmp/shots

Needs markdown-it-py (the dev extra), node with ``npm ci --prefix tools/mathjax``, and Chromium
(Debian: ``apt-get install chromium``). Not part of the tests: a tool for looking at the pages.
"""

from __future__ import annotations

import argparse
import html
import subprocess
import tempfile
from pathlib import Path

from markdown_it import MarkdownIt

from spec.docs.mathcheck import _CODE, _INLINE, mathjax

STYLE = """body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:980px;
margin:24px auto;
font-size:15px;line-height:1.5;color:#1f2328} table{border-collapse:collapse} td,th{border:1px solid #d0d7de;
padding:4px 10px} code{background:#f6f8fa;padding:1px 4px;border-radius:4px} img{max-width:100%}
.display{overflow-x:auto;margin:8px 0;text-align:center}"""


def to_html(md: str) -> str:
    """The page as HTML with its math rendered to SVG (placeholders survive Markdown untouched)."""
    items: list[tuple[str, bool]] = []
    out_lines: list[str] = []
    lines = md.splitlines()
    n = 0
    while n < len(lines):
        if lines[n].strip() == "$$":
            end = next(e for e in range(n + 1, len(lines)) if lines[e].strip() == "$$")
            indent = lines[n][: len(lines[n]) - len(lines[n].lstrip())]
            items.append(("\n".join(x.strip() for x in lines[n + 1 : end]), True))
            out_lines += ["", f"{indent}MATH{len(items) - 1}X", ""]
            n = end + 1
            continue
        line = lines[n]
        spans = _CODE.findall(line)
        for k, s in enumerate(spans):
            line = line.replace(s, f"CODE{k}X", 1)

        def inline(m: object) -> str:
            items.append((m.group(1), False))  # type: ignore[attr-defined]
            return f"MATH{len(items) - 1}X"

        line = _INLINE.sub(inline, line)
        for k, s in enumerate(spans):
            line = line.replace(f"CODE{k}X", s)
        out_lines.append(line)
        n += 1
    svgs = mathjax("render", items)
    body = MarkdownIt("commonmark").enable("table").render("\n".join(out_lines))
    for k in reversed(range(len(items))):
        svg = str(svgs[k])
        wrapped = f'<div class="display">{svg}</div>' if items[k][1] else svg
        body = body.replace(f"<p>MATH{k}X</p>", wrapped).replace(f"MATH{k}X", wrapped)
    return f"<!doctype html><meta charset=utf-8><style>{STYLE}</style>{body}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--height", type=int, default=4000)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for page in args.pages:
        page_html = args.out / (page.stem + ".html")
        page_html.write_text(to_html(page.read_text()))
        # images are relative to the page: link the page's folder beside the HTML
        plots = page.parent / "plots"
        if plots.is_dir() and not (args.out / "plots").exists():
            (args.out / "plots").symlink_to(plots.resolve())
        shot = args.out / (page.stem + ".png")
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(
                [
                    "chromium",
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    f"--user-data-dir={profile}",
                    "--hide-scrollbars",
                    f"--window-size=1100,{args.height}",
                    f"--screenshot={shot}",
                    page_html.resolve().as_uri(),
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
        print(f"{page} -> {shot} ({html.escape(str(page_html))})")


if __name__ == "__main__":
    main()
