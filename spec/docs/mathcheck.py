"""Every math fragment of the generated Markdown, and a check of each by MathJax (the TeX engine
GitHub renders Markdown math with), through node: ``tools/mathjax/`` (``npm ci`` there once)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

MATHJAX = Path(__file__).resolve().parent.parent.parent / "tools" / "mathjax"
_CODE = re.compile(r"`[^`\n]*`")
_INLINE = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)(?<!\\)\$")


def fragments(markdown: str) -> list[tuple[str, bool]]:
    """(tex, display) of each ``$$ … $$`` block (its own lines) and each inline ``$ … $`` outside
    code spans, in order."""
    out: list[tuple[str, bool]] = []
    lines = markdown.splitlines()
    n = 0
    while n < len(lines):
        if lines[n].strip() == "$$":
            end = n + 1
            while end < len(lines) and lines[end].strip() != "$$":
                end += 1
            if end == len(lines):
                raise ValueError(f"a $$ block opened at line {n + 1} is never closed")
            out.append(("\n".join(lines[n + 1 : end]), True))
            n = end + 1
            continue
        text = _CODE.sub("", lines[n])
        out += [(m.group(1), False) for m in _INLINE.finditer(text)]
        n += 1
    return out


def node_ready() -> str | None:
    """Why MathJax cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (MATHJAX / "node_modules" / "mathjax-full").is_dir():
        return f"MathJax is not installed: run `npm ci --prefix {MATHJAX}`"
    return None


def mathjax(mode: str, items: list[tuple[str, bool]]) -> list[object]:
    payload = json.dumps([{"tex": t, "display": d} for t, d in items])
    done = subprocess.run(
        ["node", str(MATHJAX / "mathjax.mjs"), mode],
        input=payload.encode(),
        capture_output=True,
        check=True,
        timeout=600,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def errors(items: list[tuple[str, bool]]) -> list[tuple[int, str]]:
    """(index, MathJax's message) for each fragment that does not parse."""
    return [(int(e["index"]), str(e["error"])) for e in mathjax("check", items)]  # type: ignore[index]
