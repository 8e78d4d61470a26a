"""Build the tinyvae website into build/site/: the README, every lesson executed with its
figures and printed results, the docs, the benchmarks, and the latent explorer.

    pip install -e ".[docs]"
    python docs/site/build.py --mode quick     # bundled 8x8 digits: a few minutes on 2 cores
    python docs/site/build.py                  # full mode (MNIST where it can be had): longer
    python -m http.server --bind 127.0.0.1 --directory build/site 8000   # open the address

The steps:

1. The Markdown pages are copied into build/site-src/pages/ (docs/site/pages.py).
2. Every lessons/NN_*.ipynb is executed in the chosen mode with a Jupyter kernel, or taken
   from ``--executed FOLDER`` when the tests already ran exactly these sources there
   (docs/site/lessons.py); a box at the top of each page says which mode and data made it.
3. The explorer's model, a VAE with a 2-D latent space, is trained on the bundled digits
   (``python -m tinyvae.train``, seconds) and its decoder exported to
   explorer/decoder.json (``python -m tinyvae.tools.export``).
4. KaTeX, which draws the maths in the reader's browser with no network, is copied from the
   npm package pinned in docs/site/package.json (``npm ci`` fetches it on the first build).
5. ``mkdocs build --strict``: any warning, such as a broken link, fails the build.

A mistake (an unknown mode, an ``--executed`` folder that is not there, a missing package, a
step that fails) ends it with one line, ``error: ...``, and exit status 2; a failed step
prints its output first, on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parents[1]))  # this checkout's tinyvae
import pages as P  # noqa: E402

import lessons as L  # noqa: E402
from tinyvae.errors import UserError  # noqa: E402
from tinyvae.tools import cli  # noqa: E402
from tinyvae.tools.flags import Parser  # noqa: E402

ROOT = P.ROOT
BUILD = ROOT / "build"
SOURCE, SITE = BUILD / "site-src", BUILD / "site"
EXPLORER_RUN = BUILD / "site-explorer-run"
EXPLORER_TRAIN = [
    "--dataset", "digits", "--latent-dim", "2", "--hidden", "128", "--epochs", "100",
    "--batch-size", "32", "--seed", "1", "--no-progress", "--pictures-every", "100",
]  # fmt: skip
KATEX = HERE / "node_modules" / "katex" / "dist"


def fail(message: str):
    raise UserError(message)


def run(command: list, **kwargs) -> str:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        print(done.stdout + done.stderr, flush=True)  # the whole story, before the one line
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        fail(f"{' '.join(map(str, command))} failed (status {done.returncode}): {last}")
    return done.stdout


def stage_lessons(pages: Path, mode: str, reuse: Path | None, staged: set) -> None:
    """Each lesson, executed, with the note on how it was made after its title; and a clean
    copy of the notebook to download beside it."""
    (pages / "lessons" / "notebooks").mkdir(parents=True, exist_ok=True)
    for lesson in L.lesson_paths():
        start = time.perf_counter()
        nb, how = L.executed(lesson, mode, reuse)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = P.rewrite_links(cell.source, f"lessons/{lesson.name}", staged, True)
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(L.run_note(nb, lesson)))
        nbformat.write(nb, pages / "lessons" / lesson.name)
        shutil.copyfile(lesson, pages / "lessons" / "notebooks" / lesson.name)
        print(f"  {lesson.name}: {how} ({time.perf_counter() - start:.0f} s)", flush=True)


def stage_explorer(pages: Path) -> None:
    """Train the 2-D model, export its decoder and test codes, and say how on the page."""
    if EXPLORER_RUN.exists():
        shutil.rmtree(EXPLORER_RUN)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    train = [sys.executable, "-m", "tinyvae.train", *EXPLORER_TRAIN, "--out", str(EXPLORER_RUN)]
    run(train, cwd=ROOT, env=env)
    out = pages / "explorer"
    export = [sys.executable, "-m", "tinyvae.tools.export", "--run", str(EXPLORER_RUN)]
    run([*export, "--out", str(out / "decoder.json"), "--codes", "297"], cwd=ROOT, env=env)
    shutil.copyfile(EXPLORER_RUN / "manifold.png", out / "manifold.png")
    layers = json.loads((out / "decoder.json").read_text())["layers"]
    if [(len(layer["W"]), len(layer["W"][0])) for layer in layers] != [(2, 128), (128, 64)]:
        fail("docs/site/pages/explorer/index.md describes a 2-128-64 decoder: update it")
    last = json.loads((EXPLORER_RUN / "metrics.jsonl").read_text().splitlines()[-1])
    how = (
        "```bash\n"
        f"python -m tinyvae.train {' '.join(EXPLORER_TRAIN)} --out runs/digits2d\n"
        "python -m tinyvae.tools.export --run runs/digits2d --out decoder.json --codes 297\n"
        "```\n\n"
        f"After its {last.get('epoch', '?')} epochs the model's test loss was "
        f"{last.get('test_loss', float('nan')):.2f} nats per image "
        f"(decoder.json: {(out / 'decoder.json').stat().st_size / 1024:.0f} KiB)."
    )
    page = out / "index.md"
    page.write_text(page.read_text().replace("<!-- how the model was made -->", how))


def stage_katex(pages: Path) -> None:
    if not KATEX.is_dir():
        print("  KaTeX: npm ci (docs/site/package-lock.json)", flush=True)
        if shutil.which("npm") is None:
            fail("KaTeX, which draws the maths, comes from the npm registry: install Node.js "
                 "with npm, then build again")  # fmt: skip
        run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(HERE)])
    out = pages / "assets" / "katex"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(KATEX / name, out / name)
    (out / "fonts").mkdir(exist_ok=True)
    for font in (KATEX / "fonts").glob("*.woff2"):  # every browser in use reads woff2
        shutil.copyfile(font, out / "fonts" / font.name)


def mkdocs_config(staged: set, lesson_names: list) -> Path:
    import yaml  # comes with mkdocs

    config = yaml.safe_load((HERE / "mkdocs.yml").read_text())
    config.update(docs_dir="pages", site_dir=str(SITE), nav=P.navigation(staged, lesson_names))
    path = SOURCE / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def main(argv=None) -> int:
    parser = Parser(prog="python docs/site/build.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mode",
        choices=("full", "quick"),
        default=os.environ.get(L.MODE_VARIABLE, "full") or "full",
        help="lesson mode: quick (bundled digits, short runs) or full (MNIST); default: "
        f"${L.MODE_VARIABLE}, else full",
    )
    parser.add_argument(
        "--executed",
        type=Path,
        metavar="FOLDER",
        help="reuse lessons executed there by the tests (TINYVAE_EXECUTED_LESSONS) when "
        "their sources are unchanged",
    )
    args = parser.parse_args(argv)
    if args.mode not in ("full", "quick"):  # the default comes from the environment
        fail(f"${L.MODE_VARIABLE} is {args.mode!r}: set it to quick or full, or unset it")
    if args.executed is not None and not args.executed.is_dir():
        fail(f"--executed {args.executed} is not a folder: give the folder where the tests "
             "executed the lessons, or leave it out")  # fmt: skip
    try:
        import mkdocs  # noqa: F401
        import mkdocs_jupyter  # noqa: F401
    except ImportError as error:
        fail(f'{error.name} is missing: pip install -e ".[docs]"')
    start = time.perf_counter()
    if SOURCE.exists():
        shutil.rmtree(SOURCE)
    pages = SOURCE / "pages"
    names = [p.name for p in L.lesson_paths()]
    print(f"building the site in {args.mode} mode", flush=True)
    staged = P.stage_markdown(pages, names)
    stage_lessons(pages, args.mode, args.executed, staged)
    print("  the latent explorer: training a 2-D VAE on the digits", flush=True)
    stage_explorer(pages)
    stage_katex(pages)
    config = mkdocs_config(staged, names)
    if SITE.exists():
        shutil.rmtree(SITE)
    run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(config)],
        cwd=SOURCE,
    )
    count = len(list(SITE.rglob("*.html")))
    print(f"done: {count} pages in {SITE.relative_to(ROOT)} ({time.perf_counter() - start:.0f} s)")
    print(
        f"open it: python -m http.server --bind 127.0.0.1 --directory {SITE.relative_to(ROOT)} 8000"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
