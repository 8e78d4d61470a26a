"""Which files of the repository become pages, where they go, and how their links follow.

The site mirrors the repository's paths, so a relative link between two pages works
unchanged: README.md becomes the home page (index.md); lessons/README.md and every
lessons/NN_*.ipynb; every docs/*.md (with docs/images/); every benchmarks/*.md; and the
pages of this folder (docs/site/pages/: the latent explorer). A new lesson or document
appears by itself, in the navigation too.

A link to a file that is not part of the site (a source file, a folder) would be broken
there, so it becomes plain text; a missing image stops the build.
"""

from __future__ import annotations

import posixpath
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWN_PAGES = Path(__file__).resolve().parent / "pages"
LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)((?:\s+\"[^\"]*\")?)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_sources() -> dict:
    """{path in the site: path in the repository} for every Markdown page."""
    pages = {"index.md": ROOT / "README.md", "lessons/README.md": ROOT / "lessons" / "README.md"}
    for folder in ("docs", "benchmarks"):
        for path in sorted((ROOT / folder).glob("*.md")):
            pages[f"{folder}/{path.name}"] = path
    return pages


def site_path(repo_path: str, staged: set) -> str | None:
    """The page or file of the site that shows ``repo_path`` (a path relative to the
    repository root, a folder ending in "/"), or None when the site does not have it."""
    repo_path = repo_path.rstrip("/") or "."
    if repo_path == "README.md":
        return "index.md"
    if repo_path.startswith("docs/site/pages/"):  # this folder's own pages
        repo_path = repo_path[len("docs/site/pages/") :]
    for candidate in (repo_path, posixpath.join(repo_path, "README.md")):
        if candidate in staged:
            return candidate
    return None


def rewrite_links(text: str, where: str, staged: set, final_urls: bool = False) -> str:
    """Follow the links of one Markdown text that sits at ``where`` (its repository path).

    Links that leave the site (``http:``, ``#anchor``) stay. A relative link to a file the
    site has is pointed at the site's copy (with ``final_urls``, for notebooks, whose
    Markdown the site generator does not read: at the ``.html`` page). A link to a file it
    lacks becomes its text alone; an image it lacks raises ValueError.
    """
    here = posixpath.dirname(where)
    site_here = posixpath.dirname(site_path(where, staged) or where)

    def follow(match):
        bang, label, target, title = match.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#", target, re.I):
            return match.group(0)
        path, _, anchor = target.partition("#")
        found = site_path(posixpath.normpath(posixpath.join(here, path)), staged)
        if found is None:
            if bang:
                raise ValueError(f"{where}: the image {target} is not in the repository")
            return label
        if final_urls:
            found = re.sub(r"(README|index)\.md$", "index.html", found)
            found = re.sub(r"\.(md|ipynb)$", ".html", found)
        link = posixpath.relpath(found, site_here) + (f"#{anchor}" if anchor else "")
        return f"{bang}[{label}]({link}{title})"

    lines, fenced = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        lines.append(line if fenced else LINK.sub(follow, line))
    return "\n".join(lines)


def stage_markdown(out: Path, lesson_names: list) -> set:
    """Copy the Markdown pages, their images and this folder's own pages into ``out``
    (with links followed); returns every path the site holds."""
    sources = markdown_sources()
    images = {
        f"docs/images/{p.name}": p
        for p in sorted((ROOT / "docs" / "images").glob("*"))
        if p.is_file()
    }
    own = {str(p.relative_to(OWN_PAGES)): p for p in sorted(OWN_PAGES.rglob("*")) if p.is_file()}
    staged = set(sources) | set(images) | set(own) | {f"lessons/{n}" for n in lesson_names}
    for name, source in {**images, **own}.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / name)
    for name, source in sources.items():
        where = str(source.relative_to(ROOT))
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(rewrite_links(source.read_text(), where, staged))
    return staged


def navigation(staged: set, lesson_names: list) -> list:
    """The site's menu: home, the lessons in order, the explorer, the docs, the benchmarks."""

    def under(folder, first=None):
        pages = sorted(p for p in staged if p.startswith(f"{folder}/") and p.endswith(".md"))
        pages = [p for p in pages if "/" not in p[len(folder) + 1 :]]
        if first in pages:
            pages.remove(first)
            pages.insert(0, first)
        return pages

    nav = [
        {"Home": "index.md"},
        {"Lessons": [{"Overview": "lessons/README.md"}, *(f"lessons/{n}" for n in lesson_names)]},
    ]
    nav += [{"Latent explorer": p} for p in sorted(staged) if p == "explorer/index.md"]
    nav += [{"The code": p} for p in sorted(staged) if p == "code/index.md"]
    nav.append({"Docs": under("docs", "docs/usage.md")})
    benchmarks = under("benchmarks", "benchmarks/README.md")
    if benchmarks[:1] == ["benchmarks/README.md"]:  # the folder's README: its overview
        benchmarks[0] = {"Overview": "benchmarks/README.md"}
    nav.append({"Benchmarks": benchmarks})
    return nav


LESSON_MENTION = re.compile(
    r"\b([Ll]essons?)(\s+)(\d{1,2})((?:(?:,\s*|\s+(?:and|or|to)\s+|\s*[–-]\s*)\d{1,2}\b)*)"
)
PROTECTED = re.compile(r"(`[^`\n]*`|!?\[(?:[^\[\]]|\[[^\]]*\])*\]\([^)\s]*[^)]*\)|<[^>\n]+>)")


def link_lessons(text: str, where: str, lesson_names: list, final_urls: bool = False) -> str:
    """Each "lesson N" (and "lessons N and M", "lessons N to M", ...) of a Markdown text at
    site path ``where`` as a link to that lesson's page; code, links and HTML tags untouched.
    A number with no lesson stays as it is."""
    pages = {int(name[:2]): name for name in lesson_names}

    def href(number):
        name = pages[number]
        target = f"lessons/{name[:-6]}.html" if final_urls else f"lessons/{name}"
        return posixpath.relpath(target, posixpath.dirname(where))

    def mention(match):
        word, space, first, rest = match.groups()
        if int(first) not in pages:
            return match.group(0)
        if word[-1] == "s":  # "lessons 3 and 7": each number is its link
            head = f"{word}{space}[{first}]({href(int(first))})"
        else:
            head = f"[{word}{space}{first}]({href(int(first))})"
        rest = re.sub(
            r"\d{1,2}",
            lambda m: (
                f"[{m.group(0)}]({href(int(m.group(0)))})"
                if int(m.group(0)) in pages
                else m.group(0)
            ),
            rest,
        )
        return head + rest

    lines, fenced = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        if fenced or line.lstrip().startswith("#"):  # code, and headings (their anchors)
            lines.append(line)
            continue
        parts = PROTECTED.split(line)
        lines.append(
            "".join(p if i % 2 else LESSON_MENTION.sub(mention, p) for i, p in enumerate(parts))
        )
    return "\n".join(lines)
