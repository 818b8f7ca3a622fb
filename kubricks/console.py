"""Shared Rich consoles, and what Kubricks' output looks like in a terminal and in a log.

Kubricks' own lines go to the user; what libraries print (MLflow and Feast messages,
Python warnings, tqdm bars, Spark's JVM on stderr) goes to the command's log file under
``<home>/logs``, so piped output reads top to bottom. When stdout is not a terminal (CI,
a pipeline step's log, ``| tee``) the console is wide enough that no table cell is cut
and no line is wrapped; Rich writes no colour codes there.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, cast

import rich
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

console = Console()
err_console = Console(stderr=True)

# Wide enough for any cell Kubricks prints (paths, URIs, error reasons) in one line.
LOG_WIDTH = 10_000
RULE_WIDTH = 80
# Third-party progress bars print a frame per update: dozens of carriage returns per
# model download in a log. Their own switches, read when a bar would start.
QUIET_LIBRARIES = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "TQDM_DISABLE": "1",
}

LOG_ATTRIBUTE = "kubricks_log"  # set on an exception that left a traceback in a log
_capture: dict[str, object] = {"enabled": False, "log": None}


def configure_output() -> None:
    """Called once by the ``kubricks`` entry point (not by in-process test runners)."""
    for name, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(name, value)
    for out in (console, err_console, rich.get_console()):  # Rich's own: progress bars
        if not out.is_terminal:
            out.width = LOG_WIDTH
    _capture["enabled"] = True


class TitledTable(Table):
    """A table whose title is a line of its own: Rich wraps a title to the table's width,
    which breaks a long one (a path, a source URI) over several lines."""

    def __init__(self, heading: str) -> None:
        super().__init__()
        self.heading = heading

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(self.heading, style="table.title")
        yield from super().__rich_console__(console, options)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    out = TitledTable(title)
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row))
    return out


def section(title: str) -> None:
    """A heading: Rich's rule in a terminal, one short line in a log."""
    if console.is_terminal:
        console.rule(title)
    else:
        console.print(f"== {title} ".ljust(RULE_WIDTH, "="), highlight=False, markup=False)


def command_line(text: str) -> None:
    """A line holding a command to copy: never broken by Rich, never highlighted."""
    console.print(text, soft_wrap=True, highlight=False)


def log_path() -> Path | None:
    """The current command's log file, while one is open."""
    log = _capture["log"]
    return log if isinstance(log, Path) else None


@contextmanager
def library_output(name: str, home: Path) -> Iterator[Path | None]:
    """Send every byte not printed by Kubricks' consoles to ``<home>/logs/<name>.log``.

    File descriptors 1 and 2 point at the log, so child processes started meanwhile
    (Spark's JVM, MLflow's server, kfp.local's steps) write there too; the consoles keep
    the original stdout and stderr. Python logging goes there at INFO, warnings included.
    A no-op unless :func:`configure_output` ran, so in-process test runners see output
    as usual.
    """
    if not _capture["enabled"] or _capture["log"] is not None:
        yield log_path()
        return
    logs = home.expanduser().resolve() / "logs"
    logs.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = logs / f"{name}.log"
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    real_out = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
    real_err = os.fdopen(os.dup(saved[2]), "w", buffering=1, encoding="utf-8", errors="replace")
    log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    os.write(log_fd, f"\n=== {stamp} kubricks {' '.join(sys.argv[1:])}\n".encode())
    for fd in (1, 2):
        os.dup2(log_fd, fd)
    os.close(log_fd)
    console.file, err_console.file = real_out, real_err
    rich.get_console().file = real_out  # a progress bar made without a console uses it
    _capture["saved"], _capture["files"] = saved, (real_out, real_err)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    _capture["log"] = path
    try:
        yield path
    except BaseException as exc:
        traceback.print_exc(file=sys.stderr)  # the whole story in the log; one line for the user
        setattr(exc, LOG_ATTRIBUTE, str(path))
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        logging.captureWarnings(False)
        _restore()


def release() -> None:
    """Give fds 1 and 2 back to the terminal or pipe, e.g. before exec'ing a server."""
    _restore()


def _restore() -> None:
    saved = _capture.get("saved")
    files = cast("tuple[TextIO, ...]", _capture.get("files") or ())
    if not isinstance(saved, dict):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    for out in (console, err_console, rich.get_console()):
        if out.file not in (sys.stdout, sys.stderr):
            out.file.flush()
    for fd, copy in saved.items():
        os.dup2(copy, fd)
        os.close(copy)
    saved.clear()
    # back to the live sys.stdout / sys.stderr
    console.file = err_console.file = rich.get_console().file = None  # type: ignore[assignment]
    for handle in files:
        handle.close()
    _capture.update(log=None, saved=None, files=None)
