"""The website in a real browser: Debian's Chromium, headless, driven by Playwright.

    python docs/site/build.py --mode quick && python -m pytest -q tests/test_site.py

The built site (build/site/) is served on 127.0.0.1. Every page is visited, at desktop and at
phone width; a test fails on a broken internal link or anchor, an image that does not load,
a request that fails, a JavaScript error, maths left as raw TeX (or that KaTeX could not
read), a page wider than a phone's screen, a formula or code block cut off, a stderr box,
output that breaks lines inside words, a figure narrower than the phone's column, or a
"lesson N" that is not a link. On the latent explorer, the mouse and a finger drag the
point, and the decoded numbers and pixels must be those of tinyvae's ``VAE.decode`` for
the same z. Screenshots go to build/site-screenshots/ (docs/images/ keeps copies).

Without a built site, Playwright or Chromium, the tests skip and say why; with
``TINYVAE_SITE_REQUIRED=1`` (CI, after building the site) only a missing Chromium skips.
"""

import collections
import functools
import http.server
import os
import re
import shutil
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "build" / "site"
EXPLORER_RUN = ROOT / "build" / "site-explorer-run"
SHOTS = ROOT / "build" / "site-screenshots"
REQUIRED = os.environ.get("TINYVAE_SITE_REQUIRED") == "1"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOT_LESSON = "lessons/07_latent_space.html"

RAW_MATHS = r"""() => {
  const found = [], root = document.querySelector("article") || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const tex = /\$\$|\\\(|\\\)|\\\[|\\\]|\$[^$\s][^$]*\$|\\(frac|mathbb|mathcal|sum|log|mid|sigma|begin)\b/;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest("pre, code, script, style, textarea, .katex")) continue;
    if (tex.test(node.textContent)) found.push(node.textContent.trim().slice(0, 80));
  }
  return found;
}"""

PAGE_FACTS = r"""() => ({
  links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
  ids: [...document.querySelectorAll("[id]")].map((e) => e.id),
  brokenImages: [...document.images].filter((i) => !i.complete || i.naturalWidth === 0)
                                      .map((i) => i.currentSrc || i.src),
  images: document.images.length,
  katex: document.querySelectorAll(".katex").length,
  katexErrors: [...document.querySelectorAll(".katex-error")].map((e) => e.textContent),
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  cutFormulas: [...document.querySelectorAll(".katex-display")].filter(cut)
    .map((e) => e.textContent.slice(0, 60)),
  cutCode: [...document.querySelectorAll("article pre")].filter(cut)
    .map((e) => e.textContent.slice(0, 60)),
  stderr: [...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map((e) => e.textContent.slice(0, 120)),
  midWord: [...document.querySelectorAll(".jp-OutputArea-output pre")]
    .filter((e) => getComputedStyle(e).wordBreak === "break-all" ||
                   getComputedStyle(e).overflowWrap === "anywhere")
    .map((e) => e.textContent.slice(0, 60)),
  narrowFigures: [...document.querySelectorAll(".jp-OutputArea-output img")]
    .filter((i) => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width <
            Math.min(i.naturalWidth, document.querySelector("article").clientWidth) - 2)
    .map((i) => `${Math.round(i.getBoundingClientRect().width)} px of ${i.naturalWidth}`),
  unlinkedLessons: (() => {
    const found = [], root = document.querySelector("article") || document.body;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest("a, code, pre, h1, h2, h3, h4, script, style")) continue;
      if (!node.parentElement.checkVisibility()) continue;  // the copy buttons' hidden text
      const m = node.textContent.match(/\b[Ll]essons? \d+/);
      if (m) found.push(node.textContent.trim().slice(0, 80));
    }
    return found;
  })(),
})"""

CUT = """function cut(e) {  // wider than its box, and that box neither scrolls nor wraps it
  const scrolls = (x) => ["auto", "scroll"].includes(getComputedStyle(x).overflowX);
  const article = document.querySelector("article") || document.body;
  for (let x = e; x && x !== article; x = x.parentElement) {
    if (scrolls(x)) return false;  // it, or a box around it, scrolls sideways
  }
  const content = article.parentElement;  // on a phone the theme's code boxes reach its edges
  return e.scrollWidth > e.clientWidth + 1 ||
         e.getBoundingClientRect().right > content.getBoundingClientRect().right + 1;
}"""


def _skip_or_fail(reason):
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def base_url():
    if not (SITE / "index.html").is_file():
        _skip_or_fail(f"the site is not built: python docs/site/build.py --mode quick ({SITE})")
    handler = functools.partial(QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail('Playwright is not installed: pip install -e ".[docs]"')
    chromium = os.environ.get("TINYVAE_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


class Visit:
    """A browser tab that notes everything that goes wrong while its pages load."""

    def __init__(self, browser, viewport, scale=1):
        self.context = browser.new_context(viewport=viewport, device_scale_factor=scale)
        self.page = self.context.new_page()
        self.problems = []
        page = self.page
        page.on(
            "console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}")
        )
        page.on("pageerror", lambda e: self.problems.append(f"JavaScript error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url}"))
        page.on(
            "response",
            lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"),
        )

    def open(self, url):
        self.problems = []
        self.page.goto(url, wait_until="load")
        return self

    def close(self):
        self.context.close()


def _file_for(url_path: str) -> Path:
    path = SITE / urllib.parse.unquote(url_path).lstrip("/")
    return path / "index.html" if path.is_dir() else path


def crawl(browser, base_url):
    """Visit every page reachable from the home page, in one tab at desktop width, and
    measure each again at phone width; returns {page path: facts}, {page path: problems}."""
    facts, problems, queue = {}, collections.defaultdict(list), ["index.html"]
    visit = Visit(browser, DESKTOP)
    while queue:
        path = queue.pop()
        if path in facts:
            continue
        page = visit.open(base_url + path).page
        page.evaluate(f"() => {{ window.cut = {CUT}; }}")
        facts[path] = page.evaluate(PAGE_FACTS)
        facts[path]["raw"] = page.evaluate(RAW_MATHS)
        page.set_viewport_size(PHONE)  # the theme's layout for phones, without a reload
        phone = page.evaluate(PAGE_FACTS)
        facts[path]["phone_overflow"] = phone["overflow"]
        facts[path]["phone_cut_formulas"] = phone["cutFormulas"]
        facts[path]["phone_cut_code"] = phone["cutCode"]
        facts[path]["phone_narrow_figures"] = phone["narrowFigures"]
        page.set_viewport_size(DESKTOP)
        problems[path] += visit.problems
        for link in facts[path]["links"]:
            if not link.startswith(base_url):
                continue  # outside the site: not checked (there is no network in CI)
            target = urllib.parse.urlsplit(link).path.lstrip("/")
            if not _file_for(target).is_file():
                problems[path].append(f"broken link: {link}")
            elif _file_for(target).suffix == ".html" and target not in facts:
                queue.append(target)
    visit.close()
    return facts, problems


@pytest.fixture(scope="module")
def desktop_crawl(browser, base_url):
    return crawl(browser, base_url)


def test_every_page_is_reached_and_loads_without_an_error(desktop_crawl):
    facts, problems = desktop_crawl
    pages = {str(p.relative_to(SITE)) for p in SITE.rglob("*.html")} - {"404.html"}
    assert pages - set(facts) == set(), "pages no link leads to"
    assert len(facts) >= 10
    found = {page: issues for page, issues in problems.items() if issues}
    assert found == {}, "\n".join(f"{page}: {issue}" for page, i in found.items() for issue in i)


def test_every_internal_anchor_exists(desktop_crawl, base_url):
    facts, _ = desktop_crawl
    missing = []
    for page, fact in facts.items():
        for link in fact["links"]:
            parts = urllib.parse.urlsplit(link)
            target = parts.path.lstrip("/")
            if link.startswith(base_url) and parts.fragment and target in facts:
                if urllib.parse.unquote(parts.fragment) not in facts[target]["ids"]:
                    missing.append(f"{page}: {link}")
    assert missing == []


def test_every_image_loads_and_every_formula_is_drawn(desktop_crawl):
    facts, _ = desktop_crawl
    for page, fact in facts.items():
        assert fact["brokenImages"] == [], page
        assert fact["katexErrors"] == [], page
        assert fact["raw"] == [], f"{page}: maths left as TeX"
    lessons = [page for page in facts if page.startswith("lessons/") and page[8:10].isdigit()]
    assert len(lessons) >= 5
    for page in lessons:  # every lesson derives something: KaTeX drew it, figures are there
        assert facts[page]["katex"] >= 5, page
        assert facts[page]["images"] >= 2, page
    assert facts["explorer/index.html"]["katex"] >= 3


def test_no_page_is_wider_than_a_phone_nor_cuts_a_formula(desktop_crawl):
    facts, _ = desktop_crawl
    wide = {
        page: fact["phone_overflow"] for page, fact in facts.items() if fact["phone_overflow"] > 0
    }
    assert wide == {}, "pages that scroll sideways on a phone, by so many pixels"
    cut = {page: fact["phone_cut_formulas"] for page, fact in facts.items()}
    assert {page: c for page, c in cut.items() if c} == {}, "formulas cut off on a phone"


def _found(facts, key):
    return {page: fact[key] for page, fact in facts.items() if fact[key]}


def test_no_formula_or_code_is_cut_at_either_width(desktop_crawl):
    facts, _ = desktop_crawl
    assert _found(facts, "cutFormulas") == {}, "formulas cut off at desktop width"
    assert _found(facts, "cutCode") == {}, "code cut off at desktop width"
    assert _found(facts, "phone_cut_code") == {}, "code cut off on a phone"


def test_lessons_show_no_stderr_and_wrap_outputs_between_words(desktop_crawl):
    facts, _ = desktop_crawl
    assert _found(facts, "stderr") == {}, "stderr output on the page"
    assert _found(facts, "midWord") == {}, "outputs that break lines inside words"


def test_figures_take_the_column_on_a_phone(desktop_crawl):
    facts, _ = desktop_crawl
    assert _found(facts, "phone_narrow_figures") == {}, "figures narrower than they fit"


def test_every_lesson_mention_is_a_link(desktop_crawl):
    facts, _ = desktop_crawl
    assert _found(facts, "unlinkedLessons") == {}, '"lesson N" without a link'


def test_lessons_are_worked_runs_with_the_exercises_left_to_the_reader(desktop_crawl):
    """The lessons' pages show each exercise as the student has it, after a "Your turn" box,
    and the worked run's verdicts: no "not attempted", no "0 of N"."""
    text = {
        page: (SITE / page).read_text()
        for page in desktop_crawl[0]
        if page.startswith("lessons/") and page[8:10].isdigit()
    }
    for page, html in text.items():
        assert "not attempted yet" not in html and "run this cell again" not in html, page
        assert not re.search(r"Lesson \d+: 0 of \d+ exercises correct", html), page
        assert "BEGIN SOLUTION" not in html and "HIDDEN TESTS" not in html, page
        turns = html.count("tv-your-turn")
        assert turns >= 1 and html.count("NotImplementedError</span>") >= turns, page
    capstone = next(html for page, html in text.items() if "capstone" in page)
    assert not re.search(r"<pre>[^<]*has not passed its check yet", capstone)  # an output


def test_the_code_pages_cover_the_package_and_lessons_link_to_them(desktop_crawl):
    facts, _ = desktop_crawl
    files = sorted(p.relative_to(ROOT) for p in (ROOT / "tinyvae").rglob("*.py"))
    pages = {f"code/{str(p)[:-3]}.html" for p in files}
    assert pages - set(facts) == set(), "files of the package without a page"
    model = next(p for p in pages if p.endswith("core/model.html"))
    assert facts[model]["katex"] >= 3  # the docstrings' maths, drawn
    assert "L-1" in facts[model]["ids"]  # line anchors
    lessons = [p for p in facts if p.startswith("lessons/") and p[8:10].isdigit()]
    linked = [p for p in lessons if any("/code/tinyvae/" in link for link in facts[p]["links"])]
    assert len(linked) >= 3, "lessons that link to the code"
    home = facts["index.html"]["links"]
    assert any(link.endswith("code/tinyvae/core/model.html") for link in home), "README table"


def explorer_model():
    from tinyvae.tools import checkpoint

    return checkpoint.build_model(checkpoint.load(EXPLORER_RUN))


def drag(page, selector, to):
    """Press the mouse on the point (the plane's centre, z = 0) and drag it to ``to``,
    fractions (x, y) of the plane's width and height from its top left corner."""
    box = page.locator(selector).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + to[0] * box["width"], box["y"] + to[1] * box["height"], steps=8)
    page.mouse.up()


def canvas_greys(page):
    return page.evaluate("""() => {
        const c = document.querySelector(".tv-image");
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        return [...d].filter((_, i) => i % 4 === 0);
    }""")


def test_the_explorer_decodes_as_tinyvae_does(browser, base_url):
    model = explorer_model()
    visit = Visit(browser, DESKTOP).open(base_url + "explorer/index.html")
    page = visit.page
    page.wait_for_function("() => window.tinyvaeExplorer !== undefined", timeout=10_000)
    before = np.array(page.evaluate("() => window.tinyvaeExplorer.pixels"))
    seen = []
    for to, expected_z in [((0.75, 0.25), (1.5, 1.5)), ((0.2, 0.9), (-1.8, -2.4))]:
        drag(page, ".tv-plane", to)
        z = page.evaluate("() => window.tinyvaeExplorer.z")
        np.testing.assert_allclose(z, expected_z, atol=0.05)  # the point went where dragged
        ours = np.array(page.evaluate("() => window.tinyvaeExplorer.pixels"))
        tinyvae = model.decode(np.array([z], dtype=np.float32))[0].astype(np.float64)
        assert ours.shape == (model.decode(np.zeros((1, 2), np.float32)).shape[1],)
        assert np.max(np.abs(ours - tinyvae)) < 1e-5
        greys = np.array(canvas_greys(page))
        assert np.max(np.abs(greys - 255 * (1 - tinyvae))) <= 1  # what the reader sees
        assert page.locator(".tv-z").inner_text() == f"z = ({z[0]:.2f}, {z[1]:.2f})"
        seen.append(ours)
    assert np.max(np.abs(seen[0] - before)) > 0.2 and np.max(np.abs(seen[1] - seen[0])) > 0.2
    assert visit.problems == []
    visit.close()


def test_a_finger_drags_the_explorer_point(browser, base_url):
    """A touch drag (Chromium's own touch events) moves the point, as on a phone."""
    context = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(base_url + "explorer/index.html", wait_until="load")
    page.wait_for_function("() => window.tinyvaeExplorer !== undefined", timeout=10_000)
    box = page.locator(".tv-plane").bounding_box()
    cdp = context.new_cdp_session(page)
    start = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    end = (box["x"] + 0.8 * box["width"], box["y"] + 0.3 * box["height"])
    cdp.send("Input.dispatchTouchEvent",
             {"type": "touchStart", "touchPoints": [{"x": start[0], "y": start[1]}]})  # fmt: skip
    for step in range(1, 9):
        x = start[0] + (end[0] - start[0]) * step / 8
        y = start[1] + (end[1] - start[1]) * step / 8
        cdp.send("Input.dispatchTouchEvent",
                 {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})  # fmt: skip
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    z = page.evaluate("() => window.tinyvaeExplorer.z")
    np.testing.assert_allclose(z, (1.8, 1.2), atol=0.1)
    assert page.evaluate("() => window.scrollY") == 0  # the page did not scroll instead
    context.close()


@pytest.mark.parametrize(
    "name, path, viewport, scale, scroll_to",
    [
        ("site-lesson-desktop", SCREENSHOT_LESSON, DESKTOP, 1, None),
        ("site-lesson-phone", SCREENSHOT_LESSON, PHONE, 2, "article h2"),
        ("site-explorer-desktop", "explorer/index.html", DESKTOP, 1, None),
        ("site-explorer-phone", "explorer/index.html", PHONE, 2, None),
    ],
)
def test_screenshots(browser, base_url, name, path, viewport, scale, scroll_to):
    visit = Visit(browser, viewport, scale).open(base_url + path)
    if "explorer" in path:
        visit.page.wait_for_function("() => window.tinyvaeExplorer !== undefined")
        drag(visit.page, ".tv-plane", (0.62, 0.4))
    if scroll_to:
        visit.page.locator(scroll_to).first.evaluate("e => e.scrollIntoView()")
    SHOTS.mkdir(parents=True, exist_ok=True)
    visit.page.screenshot(path=str(SHOTS / f"{name}.png"))
    assert (SHOTS / f"{name}.png").stat().st_size > 10_000 and visit.problems == []
    visit.close()


def test_links_follow_the_pages_to_the_site():
    """docs/site/pages.py: what the build does to links, without a browser."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("site_pages", ROOT / "docs/site/pages.py")
    pages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pages)
    staged = {"index.md", "lessons/README.md", "lessons/01_a.ipynb", "docs/usage.md"}
    text = "[one](01_a.ipynb) [use](../docs/usage.md#flags) [sol](solutions/) [web](https://x.org)"
    assert pages.rewrite_links(text, "lessons/README.md", staged) == (
        "[one](01_a.ipynb) [use](../docs/usage.md#flags) sol [web](https://x.org)"
    )
    assert pages.rewrite_links(text, "lessons/01_a.ipynb", staged, final_urls=True) == (
        "[one](01_a.html) [use](../docs/usage.html#flags) sol [web](https://x.org)"
    )
    readme = "[lessons](lessons/README.md) [top](README.md) [code](tinyvae/core/model.py)"
    assert pages.rewrite_links(readme, "README.md", staged, final_urls=True) == (
        "[lessons](lessons/index.html) [top](index.html) code"
    )
    fenced = "```\n[not a link](nowhere.md)\n```"
    assert pages.rewrite_links(fenced, "README.md", staged) == fenced
    with pytest.raises(ValueError, match="missing.png"):
        pages.rewrite_links("![a](images/missing.png)", "docs/usage.md", staged)


def _load(name):
    """A module of docs/site/, without a browser or a built site."""
    import importlib.util
    import sys

    sys.path.insert(0, str(ROOT / "docs" / "site"))
    spec = importlib.util.spec_from_file_location(f"site_{name}", ROOT / f"docs/site/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lesson_mentions_become_links():
    pages = _load("pages")
    names = ["01_a.ipynb", "03_b.ipynb", "07_c.ipynb"]
    text = "As lesson 7 shows, and lessons 1 and 3; `lesson 3` [lesson 1](x.md) lesson 9."
    assert pages.link_lessons(text, "lessons/03_b.ipynb", names, final_urls=True) == (
        "As [lesson 7](07_c.html) shows, and lessons [1](01_a.html) and [3](03_b.html); "
        "`lesson 3` [lesson 1](x.md) lesson 9."
    )
    assert pages.link_lessons("# Lesson 3\n```\nlesson 1\n```", "index.md", names) == (
        "# Lesson 3\n```\nlesson 1\n```"
    )


def test_code_spans_link_to_the_code_pages_and_a_vanished_name_stops_the_build():
    code_pages = _load("code_pages")
    symbols = code_pages.Symbols()
    text = "`tinyvae/core/model.py`, `tinyvae.VAE.decode` and `VAE.loss_and_grads(x)`, `np.exp`"
    linked = code_pages.link_code(text, "lessons/01_a.ipynb", symbols)
    path, line = symbols.find("tinyvae.core.model.VAE.decode")
    assert path == "tinyvae/core/model.py" and line > 1
    assert f"(../code/tinyvae/core/model.html#L-{line})" in linked
    assert "[`tinyvae/core/model.py`](../code/tinyvae/core/model.html)" in linked
    assert "`np.exp`" in linked and "[`np.exp`]" not in linked
    with pytest.raises(ValueError, match="tinyvae.core.nowhere.Thing"):
        code_pages.link_code("`tinyvae.core.nowhere.Thing`", "index.md", symbols)


def test_a_worked_exercise_cell_is_shown_as_the_student_has_it():
    web = _load("web_lessons")
    source = (
        'def f(x):\n    """doc"""\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION'
    )
    assert web._stub(source) == (
        'def f(x):\n    """doc"""\n    raise NotImplementedError  # your code here'
    )
    lesson = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))[2]
    nb = web.worked(lesson)
    assert not any("HIDDEN TESTS" in c.source or "nbgrader" in c.metadata for c in nb.cells)
    page = web.for_the_page(nb, lesson)
    exercises = [c for c in page.cells if "raise NotImplementedError  # your code" in c.source]
    turns = [c for c in page.cells if "tv-your-turn" in c.source]
    assert len(exercises) == len(turns) >= 1
    assert not any("BEGIN SOLUTION" in c.source for c in page.cells)


def test_a_written_answer_is_left_to_the_reader_on_the_page():
    web = _load("web_lessons")
    lesson = ROOT / "lessons" / "10_convolution.ipynb"
    page = web.for_the_page(web.worked(lesson), lesson)
    text = "\n".join(c.source for c in page.cells)
    stub = "**Your answer:** write it here, in a few sentences."
    assert text.count(stub) == 2 and "No flip" not in text and "is a correlation of x" not in text
