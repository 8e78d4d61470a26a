"""The lessons for the website: executed in one mode, or reused when the tests already ran them.

    nb, how = executed(Path("lessons/03_elbo.ipynb"), "quick", reuse=Path("build/executed-lessons"))

A copy executed elsewhere (``tests/test_lessons.py`` keeps its executed notebooks in the
folder named by ``TINYVAE_EXECUTED_LESSONS``, and CI passes that folder to the site build)
is reused only if it was run in the same mode from exactly the same sources: the notebook,
the lessons' helper files and every file of the ``tinyvae`` package (:func:`fingerprint`).

This file imports only the standard library and nbformat, so the tests can load it.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "lessons"
MODE_VARIABLE = "TINYVAE_LESSON_MODE"
KEY = "tinyvae_executed"  # where an executed notebook records how it was made


def lesson_paths() -> list:
    """Every lesson, in order: lessons/NN_name.ipynb."""
    return sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def fingerprint(lesson: Path, mode: str) -> str:
    """SHA-256 of the mode, the notebook, the lessons' .py helpers and the tinyvae package."""
    digest = hashlib.sha256(f"{mode}\n".encode())
    sources = [
        Path(lesson).resolve(),
        *sorted(LESSONS.glob("*.py")),
        *sorted((ROOT / "tinyvae").rglob("*.py")),
    ]
    for path in sources:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\n" + path.read_bytes())
    return digest.hexdigest()


def mark(nb, lesson: Path, mode: str) -> None:
    """Record in ``nb`` how it was executed: mode, fingerprint of its sources, date."""
    import tinyvae

    nb.metadata[KEY] = {
        "mode": mode,
        "fingerprint": fingerprint(lesson, mode),
        "date": datetime.date.today().isoformat(),
        "tinyvae": tinyvae.__version__,
    }


def save_executed(nb, lesson: Path, mode: str, folder: Path) -> Path:
    """Write an executed notebook where :func:`executed` will find it (``folder/NAME.ipynb``)."""
    mark(nb, lesson, mode)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(lesson).name
    nbformat.write(nb, path)
    return path


def execute(lesson: Path, mode: str, timeout: int = 900):
    """Run ``lesson`` top to bottom in a ``python3`` Jupyter kernel in ``mode``; a failing cell
    raises SystemExit naming the lesson, the cell and the error."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    os.environ[MODE_VARIABLE] = mode  # the kernel inherits this process's environment
    nb = nbformat.read(lesson, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(LESSONS)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        failed = next(
            (
                i
                for i, c in enumerate(nb.cells)
                if any(o.get("output_type") == "error" for o in c.get("outputs", []))
            ),
            "?",
        )
        last = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise SystemExit(f"error: lesson {lesson.name} failed in cell {failed}: {last}") from None
    mark(nb, lesson, mode)
    return nb


def executed(lesson: Path, mode: str, reuse: Path | None = None):
    """(executed notebook, "reused" or "executed"): a current copy from ``reuse``, else a new run."""
    copy = reuse / lesson.name if reuse else None
    if copy is not None and copy.is_file():
        nb = nbformat.read(copy, as_version=4)
        made = nb.metadata.get(KEY, {})
        if made.get("mode") == mode and made.get("fingerprint") == fingerprint(lesson, mode):
            return nb, "reused"
    return execute(lesson, mode), "executed"


def _stream_text(nb) -> str:
    return "".join(
        o.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if o.get("output_type") == "stream"
    )


def run_note(nb, lesson: Path) -> str:
    """The box at the top of a lesson's page: which mode and data made its outputs (as the
    lesson printed them), and how to get and run the notebook. HTML, for a markdown cell."""
    text, made = _stream_text(nb), nb.metadata.get(KEY, {})
    mode = re.search(r"Lesson mode '(\w+)'", text)
    mode = mode.group(1) if mode else made.get("mode", "?")
    loaded = re.search(
        r"Loaded '([\w-]+)': (\d+) training and (\d+) test images of (\d+)x(\d+)", text
    )
    if loaded:
        name, n_train, n_test, h, w = loaded.groups()
        data = (
            f" on the <strong>{name}</strong> data set: {int(n_train):,} training and "
            f"{int(n_test):,} test images of {h}&times;{w} pixels"
        )
    else:
        data = ", loading no data set (it printed none)"
    notes = "".join(f" {line.strip()}" for line in text.splitlines() if line.startswith("NOTE:"))
    other = (
        "In full mode (the default) the lessons train longer, on MNIST where they load "
        "data, so their numbers and figures differ from these."
        if mode == "quick"
        else f"With <code>{MODE_VARIABLE}=quick</code> they train briefly, on the bundled "
        "8&times;8 digits where they load data, and give other numbers and figures."
    )
    name = lesson.name
    return (
        '<div class="admonition info tv-run-note">\n'
        '<p class="admonition-title">How these outputs were made</p>\n'
        f"<p>This page is <code>lessons/{name}</code> run from top to bottom in "
        f"<strong>{mode} mode</strong> (<code>{MODE_VARIABLE}={mode}</code>){data}, "
        f"with tinyvae {made.get('tinyvae', '?')} on {made.get('date', '?')}.{notes} {other}</p>\n"
        f'<p><strong>Run it yourself:</strong> <a href="notebooks/{name}" download>download '
        f"{name}</a> (without outputs). It runs inside a tinyvae checkout, beside the helpers "
        'in <code>lessons/</code>: <code>pip install -e ".[dev]" jupyterlab</code>, then '
        f"<code>jupyter lab lessons/{name}</code> (add <code>{MODE_VARIABLE}=quick</code> in "
        "front for the short runs on the bundled digits).</p>\n"
        "</div>"
    )
