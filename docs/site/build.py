"""Build the tinyvae website into build/site/: the README, every lesson executed with its
figures and printed results, the docs, the benchmarks, and the latent explorer.

    pip install -e ".[docs]"
    python docs/site/build.py --mode quick     # bundled 8x8 digits: a few minutes on 2 cores
    python docs/site/build.py                  # full mode (MNIST, Fashion-MNIST): longer
    python -m http.server --bind 127.0.0.1 --directory build/site 8000   # open the address

With ``--repo-url URL`` (or ``$TINYVAE_REPO_URL``) every page links to the repository.

The steps:

1. The Markdown pages are copied into build/site-src/pages/ (docs/site/pages.py), with
   every "lesson N" and every code span that names a file or a name of the package as a
   link; each file of the package gets its own page (docs/site/code_pages.py).
2. Every lessons/NN_*.ipynb is executed in the chosen mode with its exercises solved and
   shown as the student has them, or taken from build/site-lessons/ when it was run from
   exactly these sources (docs/site/web_lessons.py); a box at the top of each page says
   which mode and data made it. Output on stderr stops the build.
3. The explorer's model, a VAE with a 2-D latent space, is trained (``python -m
   tinyvae.train``; quick mode: the bundled 8x8 digits, seconds; full mode: Fashion-MNIST's
   28x28 images, under a minute) and its decoder exported to explorer/decoder.json
   (``python -m tinyvae.tools.export``); the run is reused while its command and the
   package are unchanged.
4. KaTeX, which draws the maths in the reader's browser with no network, is copied from the
   npm package pinned in docs/site/package.json (``npm ci`` fetches it on the first build).
5. ``mkdocs build --strict``: any warning, such as a broken link, fails the build. Then the
   Jupyter stylesheet that mkdocs-jupyter puts inside every lesson page becomes one file,
   assets/notebook.css, and the search index loses the TeX and the code of its previews.

A mistake (an unknown mode, a missing package, a step that fails) ends it with one line,
``error: ...``, and exit status 2; a failed step prints its output first, on stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parents[1]))  # this checkout's tinyvae
import code_pages as C  # noqa: E402
import pages as P  # noqa: E402
import web_lessons as L  # noqa: E402

from tinyvae.errors import UserError  # noqa: E402
from tinyvae.tools import cli  # noqa: E402
from tinyvae.tools.flags import Parser  # noqa: E402

ROOT = P.ROOT
BUILD = ROOT / "build"
SOURCE, SITE = BUILD / "site-src", BUILD / "site"
EXPLORER_RUN = BUILD / "site-explorer-run"  # the explorer's run, whichever mode made it
REPO_VARIABLE = "TINYVAE_REPO_URL"
COMMON = ["--latent-dim", "2", "--hidden", "128", "--seed", "1", "--no-progress"]
EXPLORERS = {  # the explorer's model in each mode: what it is, and how tinyvae trains it
    "quick": {
        "what": "a 2-D VAE on the bundled 8x8 digits",
        "data": ["digits"],
        "train": ["--epochs", "100", "--batch-size", "32", "--pictures-every", "100"],
    },
    "full": {
        "what": "a 2-D VAE on Fashion-MNIST's 28x28 images (MNIST where it is missing)",
        "data": ["fashion-mnist", "mnist"],
        "train": ["--epochs", "30", "--batch-size", "128", "--pictures-every", "30"],
    },
}
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


def stage_lessons(pages: Path, mode: str, staged: set, repo_url: str | None) -> None:
    """Each lesson as the site shows it (docs/site/web_lessons.py: run with its solutions,
    read without them), the note on how it was made after its title, its mentions of other
    lessons and of the package's code as links; and the clean notebook to download."""
    (pages / "lessons" / "notebooks").mkdir(parents=True, exist_ok=True)
    names = [p.name for p in L.lesson_paths()]
    for lesson in L.lesson_paths():
        start = time.perf_counter()
        nb, how = L.run(lesson, mode)
        nb = L.for_the_page(nb, lesson)
        where = f"lessons/{lesson.name}"
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                text = P.rewrite_links(cell.source, where, staged, True)
                text = P.link_lessons(text, where, names, final_urls=True)
                cell.source = link_code(text, where)
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(L.run_note(nb, lesson, repo_url)))
        nbformat.write(nb, pages / "lessons" / lesson.name)
        shutil.copyfile(lesson, pages / "lessons" / "notebooks" / lesson.name)
        print(f"  {lesson.name}: {how} ({time.perf_counter() - start:.0f} s)", flush=True)


SYMBOLS = None


def link_code(text: str, where: str) -> str:
    """``text`` with its code spans that name the package's files or names linked to their
    code pages; a dotted tinyvae name that no longer exists stops the build."""
    global SYMBOLS
    SYMBOLS = SYMBOLS or C.Symbols()
    try:
        return C.link_code(text, where, SYMBOLS)
    except ValueError as error:
        fail(str(error))


def link_pages(pages: Path, staged: set, repo_url: str | None) -> None:
    """The Markdown pages' lesson mentions and code spans as links; the README's clone
    command with the repository's address when there is one."""
    names = [p.name for p in L.lesson_paths()]
    for name in sorted(staged):
        if not name.endswith(".md") or name.startswith("code/"):
            continue
        text = (pages / name).read_text()
        text = link_code(P.link_lessons(text, name, names), name)
        if repo_url:
            text = text.replace("<this repository>", repo_url)
        (pages / name).write_text(text)


def _loadable(name: str) -> bool:
    from tinyvae.tools import data

    try:
        data.load(name)
    except Exception:  # not on this machine and no network: the next data set
        return False
    return True


def stage_explorer(pages: Path, mode: str) -> None:
    """Train the 2-D model of ``mode`` (or reuse the run made with the same command and the
    same package), export its decoder and test codes, and say on the page which data and
    which commands made it."""
    recipe = EXPLORERS[mode]
    dataset = next((name for name in recipe["data"] if _loadable(name)), None)
    if dataset is None:
        fail(f"the explorer's {mode}-mode model needs one of {', '.join(recipe['data'])}")
    arguments = ["--dataset", dataset, *COMMON, *recipe["train"]]
    run_dir = BUILD / f"site-explorer-{mode}"
    key = hashlib.sha256(" ".join(arguments).encode())
    for path in sorted((ROOT / "tinyvae").rglob("*.py")):
        key.update(path.read_bytes())
    stamp = run_dir / "site-key.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    if not (stamp.is_file() and stamp.read_text() == key.hexdigest()):
        if run_dir.exists():
            shutil.rmtree(run_dir)
        train = [sys.executable, "-m", "tinyvae.train", *arguments, "--out", str(run_dir)]
        run(train, cwd=ROOT, env=env)
        stamp.write_text(key.hexdigest())
    if EXPLORER_RUN.is_symlink() or EXPLORER_RUN.is_file():
        EXPLORER_RUN.unlink()
    elif EXPLORER_RUN.exists():
        shutil.rmtree(EXPLORER_RUN)
    EXPLORER_RUN.symlink_to(run_dir.name)  # the browser test reads the model the site shows
    out = pages / "explorer"
    export = [sys.executable, "-m", "tinyvae.tools.export", "--run", str(run_dir)]
    run([*export, "--out", str(out / "decoder.json"), "--codes", "297"], cwd=ROOT, env=env)
    shutil.copyfile(run_dir / "manifold.png", out / "manifold.png")
    net = json.loads((out / "decoder.json").read_text())
    shapes = [(len(layer["W"]), len(layer["W"][0])) for layer in net["layers"]]
    h, w = net["image_shape"]
    if shapes != [(2, 128), (128, h * w)]:
        fail(f"docs/site/pages/explorer/index.md describes a 2-128-(H*W) decoder, not {shapes}")
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    from tinyvae.tools.data import CLASS_NAMES

    names = CLASS_NAMES.get(dataset)
    legend = (
        "Each small number is where the encoder puts a test image of that class (its mean "
        "\\(\\mu\\)): " + ", ".join(f"{i} {name.lower()}" for i, name in enumerate(names)) + "."
        if names
        else "Each small number is where the encoder puts a test image of that digit "
        "(its mean \\(\\mu\\))."
    )
    what = {
        "digits": "the bundled 8×8 digits (1,797 small scans of handwritten digits)",
        "mnist": "MNIST's 28×28 handwritten digits",
        "fashion-mnist": "Fashion-MNIST's 28×28 pictures of clothes (Zalando's 70,000 "
        "greyscale images in ten classes)",
    }[dataset]
    numbers = sum(a * b + b for a, b in shapes)
    how = (
        "```bash\n"
        f"python -m tinyvae.train {' '.join(arguments)} --out runs/explorer\n"
        "python -m tinyvae.tools.export --run runs/explorer --out decoder.json --codes 297\n"
        "```\n\n"
        f"After its {last.get('epoch', '?')} epochs the model's test loss was "
        f"{last.get('test_loss', float('nan')):.2f} nats per image "
        f"(decoder.json: {(out / 'decoder.json').stat().st_size / 1024:.0f} KiB). "
        + ("The site's full mode (`--mode full`) trains it on Fashion-MNIST's 28×28 images."
           if mode == "quick"
           else "The site's quick mode (`--mode quick`) trains it on the bundled 8×8 digits.")
    )  # fmt: skip
    fill = {
        "<!-- the data -->": what,
        "<!-- the legend -->": legend,
        "<!-- pixels -->": f"{h * w}",
        "<!-- image size -->": f"{h}×{w}",
        "<!-- numbers -->": f"{numbers:,}",
        "<!-- how the model was made -->": how,
    }
    page = out / "index.md"
    text = page.read_text()
    for mark, value in fill.items():
        if mark not in text:
            fail(f"docs/site/pages/explorer/index.md lacks {mark}")
        text = text.replace(mark, value)
    page.write_text(text)


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


NOTEBOOK_STYLE = re.compile(r"\s*<style[^>]*>(.*?)</style>", re.S)
GREEK = "alpha beta gamma delta epsilon varepsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau phi varphi chi psi omega Sigma Phi Omega Delta Gamma Lambda Theta".split()
GREEK_LETTERS = dict(zip(GREEK, "αβγδεεζηθικλμνξπρστφφχψωΣΦΩΔΓΛΘ"))
GREEK_LETTERS.update(sim="~", pm="±", mid="|", cdot="·", times="×", le="≤", leq="≤", ge="≥",
                     geq="≥", approx="≈", infty="∞", to="→", sum="Σ", partial="∂", nabla="∇",
                     log=" log ", exp=" exp ", mathcal="", mathbb="", operatorname="")  # fmt: skip


def _plain_tex(tex: str) -> str:
    """TeX as a search preview can show it: Greek letters as letters, commands and braces out."""
    tex = re.sub(r"\\([A-Za-z]+)", lambda m: GREEK_LETTERS.get(m.group(1), " "), tex)
    tex = re.sub(r"[{}_^\\]", "", tex)
    return re.sub(r"\s+", " ", tex).strip()


def finish(site: Path) -> None:
    """One cached stylesheet for the lessons instead of the same styles inside each page,
    and search previews without TeX or code."""
    shared = None
    for page in sorted((site / "lessons").glob("[0-9][0-9]_*.html")):
        text = page.read_text()
        head, body = text.split("</head>", 1) if "</head>" in text else ("", text)
        styles = [m.group(1) for m in NOTEBOOK_STYLE.finditer(body)]
        big = [css for css in styles if len(css) > 20_000]  # Jupyter's, not a widget's few rules
        if not big:
            fail(f"{page.name}: mkdocs-jupyter's stylesheet was not found; update finish()")
        css = "\n".join(big)
        if shared is None:
            shared = css
            (site / "assets" / "notebook.css").write_text(css)
        elif css != shared:
            fail(f"{page.name} has other notebook styles than the first lesson's")
        for block in big:
            body = body.replace(block, "", 1)
        body = re.sub(r"\s*<style[^>]*>\s*</style>", "", body)
        link = '<link rel="stylesheet" href="../assets/notebook.css">\n'
        page.write_text(f"{head}{link}</head>{body}" if head else link + body)
    index = site / "search" / "search_index.json"
    if index.is_file():
        data = json.loads(index.read_text())
        for doc in data["docs"]:
            text = re.sub(r"<pre.*?</pre>", " ", doc.get("text", ""), flags=re.S)
            text = re.sub(r"\$\$(.+?)\$\$|\$([^$]+)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]",
                          lambda m: _plain_tex(next(g for g in m.groups() if g is not None)),
                          text, flags=re.S)  # fmt: skip
            doc["text"] = text
            doc["title"] = re.sub(r"\$([^$]+)\$", lambda m: _plain_tex(m.group(1)), doc["title"])
        index.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def mkdocs_config(staged: set, lesson_names: list, repo_url: str | None) -> Path:
    import yaml  # comes with mkdocs

    config = yaml.safe_load((HERE / "mkdocs.yml").read_text())
    config.update(docs_dir="pages", site_dir=str(SITE), nav=P.navigation(staged, lesson_names))
    if repo_url:  # the theme shows it in the header, on every page
        config.update(repo_url=repo_url, edit_uri="")
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
        "--repo-url",
        default=os.environ.get(REPO_VARIABLE) or None,
        metavar="URL",
        help="the repository's public address, linked from every page, the lessons' download "
        f"boxes and the code pages; default: ${REPO_VARIABLE}, else no link",
    )
    parser.add_argument(
        "--explorer",
        choices=("full", "quick"),
        help="the explorer's model: quick (8x8 digits) or full (Fashion-MNIST's 28x28 "
        "images); default: as --mode",
    )
    args = parser.parse_args(argv)
    if args.mode not in ("full", "quick"):  # the default comes from the environment
        fail(f"${L.MODE_VARIABLE} is {args.mode!r}: set it to quick or full, or unset it")
    args.explorer = args.explorer or args.mode
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
    code = C.stage(pages, (ROOT / "README.md").read_text(), args.repo_url, names)
    staged |= set(code)
    link_pages(pages, staged, args.repo_url)
    stage_lessons(pages, args.mode, staged, args.repo_url)
    print(f"  the latent explorer: {EXPLORERS[args.explorer]['what']}", flush=True)
    stage_explorer(pages, args.explorer)
    stage_katex(pages)
    config = mkdocs_config(staged, names, args.repo_url)
    if SITE.exists():
        shutil.rmtree(SITE)
    run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(config)],
        cwd=SOURCE,
    )
    finish(SITE)
    count = len(list(SITE.rglob("*.html")))
    print(f"done: {count} pages in {SITE.relative_to(ROOT)} ({time.perf_counter() - start:.0f} s)")
    print(
        f"open it: python -m http.server --bind 127.0.0.1 --directory {SITE.relative_to(ROOT)} 8000"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
