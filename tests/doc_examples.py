"""The HTTP request examples the docs show, read from the Markdown so tests can send them.

Every ``curl ... -d '<json>' <url>/<path>`` in a fenced block of README.md, serving/README.md
or infra/README.md is one example; the test that sends them also requires the serving and
infra pages to show some, so an example cannot silently stop being checked.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PAGES = ("README.md", "serving/README.md", "infra/README.md")
_FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)


@dataclass(frozen=True)
class Example:
    page: str
    path: str  # /predict or /predict_by_key
    body: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.page}: POST {self.path}"


def _without_comment(open_quotes: int, line: str) -> str:
    """``line`` up to a ``#`` that starts a shell comment (one outside any quote)."""
    quotes = open_quotes
    for i, char in enumerate(line):
        if char == "'":
            quotes += 1
        elif char == "#" and quotes % 2 == 0 and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def commands(block: str) -> list[str]:
    """Shell commands of a fenced block: backslash-continued lines joined, a quoted string
    kept whole across lines, comments dropped."""
    out: list[str] = []
    pending = ""
    for raw in re.sub(r"\\\n", " ", block).splitlines():
        line = _without_comment(pending.count("'"), raw)
        pending = f"{pending}\n{line}" if pending else line
        if pending.count("'") % 2 == 0:  # every quote closed: the command is whole
            out.append(pending.strip())
            pending = ""
    return [c for c in out if c]


def parse_curl(command: str, page: str) -> Example | None:
    if not command.startswith("curl "):
        return None
    words = shlex.split(command, posix=True)
    body = words[words.index("-d") + 1] if "-d" in words else None
    url = next((w for w in words[1:] if "/predict" in w and not w.startswith("-")), None)
    if body is None or url is None:
        return None
    return Example(page, "/" + url.rstrip("/").rsplit("/", 1)[-1], json.loads(body))


def examples(pages: tuple[str, ...] = PAGES) -> dict[str, list[Example]]:
    """Per page, the request examples it shows."""
    found: dict[str, list[Example]] = {}
    for page in pages:
        text = (REPO / page).read_text()
        found[page] = [
            example
            for block in _FENCE.findall(text)
            for command in commands(block)
            if (example := parse_curl(command, page)) is not None
        ]
    return found
