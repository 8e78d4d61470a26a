"""The code itself on the website: one highlighted page per file of the tinyvae package, and
links to those pages from the text.

* :func:`stage` writes ``code/<path>.md`` for every ``tinyvae/**/*.py`` that exists when the
  site is built (no list of modules is kept here), and ``code/index.md``, which lists them
  in the README's reading order. Each page has the file with line numbers that are anchors
  (``#L-12``), and above it what the file defines, each name linked to its line, with the
  maths of its docstring (``.. math::``, ``:math:``) drawn by KaTeX.
* :func:`link_code` turns an inline code span that names a file (```tinyvae/core/model.py```,
  or ```networks.py``` after a path in the same folder) or a name of the package
  (```tinyvae.VAE.decode```, ```VAE.loss_and_grads```) into a link to its page and line. A
  dotted ``tinyvae.`` name that no longer exists stops the build: the text that names it must
  follow the code.
"""

from __future__ import annotations

import ast
import html
import posixpath
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tinyvae"
SPAN = re.compile(r"(?<![\[`])`([^`\n]+)`(?![`\]])")
FENCE = re.compile(r"^\s*(```|~~~)")


def sources() -> list:
    """Every .py file of the package, as repository paths (tinyvae/core/model.py)."""
    return sorted(str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py"))


def page_of(path: str) -> str:
    """The site page of a repository file: tinyvae/core/model.py -> code/tinyvae/core/model.md."""
    return f"code/{path[:-3]}.md"


class Symbols:
    """Where each module, class, function and method of the package is defined."""

    def __init__(self):
        self.files = sources()
        self.defs = {}  # "tinyvae.core.model.VAE.decode" -> (path, line)
        self.modules = {}  # "tinyvae.core.model" -> path
        self.imports = {}  # "tinyvae.VAE" -> "tinyvae.core.model.VAE" (re-exports)
        for path in self.files:
            module = path[:-3].replace("/", ".").removesuffix(".__init__")
            self.modules[module] = path
            tree = ast.parse((ROOT / path).read_text())
            package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
            for node in tree.body:
                if isinstance(node, ast.ImportFrom) and (
                    node.level or (node.module or "").split(".")[0] == "tinyvae"
                ):
                    base = package
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    if not node.level:
                        origin = node.module
                    else:
                        origin = f"{base}.{node.module}" if node.module else base
                    for alias in node.names:
                        self.imports[f"{module}.{alias.asname or alias.name}"] = (
                            f"{origin}.{alias.name}"
                        )
                if (  # lazy re-exports: _HOMES = {"VAE": "tinyvae.core.model", ...}
                    isinstance(node, ast.Assign)
                    and any(getattr(t, "id", None) == "_HOMES" for t in node.targets)
                    and isinstance(node.value, ast.Dict)
                ):
                    for key, value in zip(node.value.keys, node.value.values):
                        if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                            self.imports[f"{module}.{key.value}"] = f"{value.value}.{key.value}"
            self._visit(tree, module, path)

    def _visit(self, node, prefix, path):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}.{child.name}"
                self.defs[name] = (path, child.lineno)
                if isinstance(child, ast.ClassDef):
                    self._visit(child, name, path)

    def find(self, dotted: str):
        """(path, line or None) of a dotted name of the package, or None."""
        for _ in range(5):  # follow re-exports (tinyvae.VAE -> tinyvae.core.model.VAE)
            if dotted in self.modules:
                return self.modules[dotted], None
            if dotted in self.defs:
                return self.defs[dotted]
            for cut in range(dotted.count(".") + 1, 1, -1):
                head, tail = ".".join(dotted.split(".")[:cut]), dotted.split(".")[cut:]
                if head in self.imports:
                    dotted = ".".join([self.imports[head], *tail])
                    break
            else:
                return None
        return None

    def find_short(self, name: str):
        """(path, line) of ``Class.method`` or ``Class`` when one class of the package has
        that name, else None."""
        if not name[:1].isupper():
            return None
        found = [where for dotted, where in self.defs.items() if dotted.endswith(f".{name}")]
        return found[0] if len(found) == 1 else None


def _href(target_page: str, line, from_page: str) -> str:
    link = posixpath.relpath(target_page[:-3] + ".html", posixpath.dirname(from_page))
    return link + (f"#L-{line}" if line else "")


def link_code(text: str, page: str, symbols: Symbols) -> str:
    """``text`` (Markdown at site path ``page``) with each inline code span that names a file
    or a definition of the package linked to its code page. Raises ValueError for a dotted
    ``tinyvae.`` name that the package does not define."""
    folder = [None]  # the folder of the last file path on the line, for a bare "networks.py"

    def follow(match):
        code = match.group(1).strip()
        name = re.split(r"[(\s]", code, maxsplit=1)[0]
        target = None
        if re.fullmatch(r"tinyvae(/[\w.]+)*/?", name):
            path = name.rstrip("/")
            if path.endswith(".py") and path in symbols.files:
                folder[0] = posixpath.dirname(path)
                target = (page_of(path), None)
            elif (ROOT / path).is_dir() and path.startswith("tinyvae"):
                folder[0] = path
                target = ("code/index.md", None)
        elif re.fullmatch(r"\w+\.py", name) and folder[0]:
            path = f"{folder[0]}/{name}"
            if path in symbols.files:
                target = (page_of(path), None)
        elif re.fullmatch(r"tinyvae(\.\w+)+", name):
            found = symbols.find(name)
            if found is None:
                raise ValueError(
                    f"{page}: `{code}` names {name}, which the tinyvae package does not define "
                    "(any more): say what the text means in today's terms"
                )
            target = (page_of(found[0]), found[1])
        elif re.fullmatch(r"[A-Z]\w*\.\w+", name):
            found = symbols.find_short(name)
            if found:
                target = (page_of(found[0]), found[1])
        if target is None:
            return match.group(0)
        return f"[{match.group(0)}]({_href(target[0], target[1], page)})"

    lines, fenced = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        folder[0] = None  # a bare file name follows a path on its own line only
        lines.append(line if fenced else SPAN.sub(follow, line))
    return "\n".join(lines)


# --- the pages ---------------------------------------------------------------------------


def reading_order(readme: str, files: list) -> list:
    """The package's files in the order the README's table names them (a bare file name
    after a path is in that path's folder), then the rest in alphabetical order."""
    order, folder = [], None
    for line in readme.split("\n"):
        if not line.startswith("|"):
            continue
        for name in re.findall(r"`([^`]+)`", line):
            if re.fullmatch(r"tinyvae(/[\w.]+)*/?", name):
                folder = name.rstrip("/") if name.endswith("/") else posixpath.dirname(name)
                path = name
            elif re.fullmatch(r"\w+\.py", name) and folder:
                path = f"{folder}/{name}"
            else:
                continue
            if path in files and path not in order:
                order.append(path)
    return order + [p for p in files if p not in order]


def _maths(docstring: str) -> str:
    """A docstring as HTML, its ``.. math::`` blocks and ``:math:`` roles as KaTeX's TeX."""
    out, lines, i = [], docstring.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        block = re.match(r"\s*\.\. math::\s*(.*)", line)
        if block:
            tex = [block.group(1)]
            indent = len(line) - len(line.lstrip())
            i += 1
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                if not lines[i].strip() and (
                    i + 1 >= len(lines) or len(lines[i + 1]) - len(lines[i + 1].lstrip()) <= indent
                ):
                    break
                tex.append(lines[i].strip())
                i += 1
            tex = " ".join(tex).strip()
            if "&" in tex or "\\\\" in tex:  # Sphinx's reading: lines aligned at "&"
                tex = f"\\begin{{aligned}}{tex}\\end{{aligned}}"
            out.append(f'<div class="tv-math">\\[{html.escape(tex)}\\]</div>')
            continue
        out.append(line)
        i += 1
    text = "\n".join(out)
    parts = re.split(r"(<div class=\"tv-math\">.*?</div>)", text, flags=re.S)
    result = []
    for part in parts:
        if part.startswith('<div class="tv-math">'):
            result.append(part)
            continue
        part = html.escape(part)
        part = re.sub(r":math:`([^`]+)`", r"\\(\1\\)", part)
        part = re.sub(r"``([^`]+)``", r"<code>\1</code>", part)
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", part) if p.strip()]
        result += [f"<p>{p}</p>" for p in paragraphs]
    return "\n".join(result)


def _contents(path: str, tree) -> str:
    """What the file defines: each class, function and method, linked to its line, with its
    docstring (maths drawn)."""
    items = []

    def visit(node, prefix="", depth=0):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                doc = ast.get_docstring(child) or ""
                kind = "class" if isinstance(child, ast.ClassDef) else "def"
                items.append(
                    f'<details class="tv-def tv-depth-{depth}"{" open" if ".. math::" in doc else ""}>'
                    f'<summary><code>{kind} <a href="#L-{child.lineno}">{html.escape(name)}</a>'
                    f'</code> <span class="tv-line">line {child.lineno}</span></summary>\n'
                    f"{_maths(doc)}\n</details>"
                )
                if isinstance(child, ast.ClassDef):
                    visit(child, f"{name}.", depth + 1)

    visit(tree)
    return "\n".join(items)


def _code_html(source: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    formatter = HtmlFormatter(
        linenos="inline", anchorlinenos=True, lineanchors="L", wrapcode=True, cssclass="highlight"
    )
    return highlight(source, PythonLexer(), formatter)


def link_lessons_html(text: str, page: str, lesson_names: list) -> str:
    """Each "lesson N" in the text of an HTML fragment (not in its tags) as a link."""
    pages = {int(name[:2]): name[:-6] for name in lesson_names}

    def link(match):
        number = int(match.group(2))
        if number not in pages:
            return match.group(0)
        href = posixpath.relpath(f"lessons/{pages[number]}.html", posixpath.dirname(page))
        return f'<a href="{href}">{match.group(0)}</a>'

    parts = re.split(r"(<[^>]+>)", text)
    return "".join(
        p if i % 2 else re.sub(r"\b([Ll]essons?) (\d{1,2})\b", link, p) for i, p in enumerate(parts)
    )


def code_page(path: str, position: int, repo_url: str | None, branch: str) -> str:
    source = (ROOT / path).read_text()
    tree = ast.parse(source)
    module_doc = ast.get_docstring(tree) or ""
    lines = source.count("\n") + (not source.endswith("\n"))
    where = (
        f' · <a href="{repo_url.rstrip("/")}/blob/{branch}/{path}">in the repository</a>'
        if repo_url
        else ""
    )
    contents = _contents(path, tree)
    return (
        "---\nsearch:\n  exclude: true\n---\n\n"  # the code stays out of the search index
        f"# `{path}`\n\n"
        f'<p class="tv-code-meta">{lines} lines · file {position} in '
        f'<a href="{posixpath.relpath("code/index.html", posixpath.dirname(page_of(path)))}">'
        f"the reading order</a>{where}</p>\n\n"
        f'<div class="tv-module-doc">\n{_maths(module_doc)}\n</div>\n\n'
        + (
            f'## What it defines\n\n<div class="tv-defs">\n{contents}\n</div>\n\n'
            if contents
            else ""
        )
        + f'## The code\n\n<div class="tv-code">\n{_code_html(source)}\n</div>\n'
    )


def stage(
    out: Path, readme: str, repo_url: str | None, lesson_names: list, branch: str = "main"
) -> list:
    """Write the code pages and their index into ``out`` (the site's pages); returns their
    site paths, the index first."""
    files = reading_order(readme, sources())
    written = ["code/index.md"]
    rows = []
    for position, path in enumerate(files, 1):
        page = out / page_of(path)
        page.parent.mkdir(parents=True, exist_ok=True)
        text = code_page(path, position, repo_url, branch)
        head, code = text.split("## The code\n", 1)  # the docstrings' mentions, not the code's
        page.write_text(
            link_lessons_html(head, page_of(path), lesson_names) + "## The code\n" + code
        )
        written.append(page_of(path))
        doc = ast.get_docstring(ast.parse((ROOT / path).read_text())) or ""
        first = html.escape(doc.strip().split("\n\n")[0].replace("\n", " "))
        first = re.sub(r"``([^`]+)``", r"<code>\1</code>", first)
        first = re.sub(  # Sphinx's roles: :class:`~a.b.C` shows C, :func:`a.f` shows a.f
            r":(?:class|func|meth|mod|attr|obj):`(~?)([^`]+)`",
            lambda m: f"<code>{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}</code>",
            first,
        )
        first = re.sub(r":math:`([^`]+)`", r"\\(\1\\)", first)
        href = page_of(path)[len("code/") : -3] + ".html"
        shown = path.replace("/", "/<wbr>")  # a long path may break after a slash on a phone
        rows.append(f'<tr><td>{position}</td><td><a href="{href}"><code>{shown}</code></a></td>'
                    f"<td>{first}</td></tr>")  # fmt: skip
    where = (
        f'The whole repository is at <a href="{repo_url}">{html.escape(repo_url)}</a>.'
        if repo_url
        else "The repository holds these files under <code>tinyvae/</code>."
    )
    (out / "code").mkdir(parents=True, exist_ok=True)
    (out / "code" / "index.md").write_text(
        "# The code\n\n"
        "Every file of the `tinyvae` package, in the order the README suggests reading it: "
        "first `tinyvae/core/`, the maths written by hand, then the tools and the commands. "
        "Each page shows the file with numbered lines (a line's number is a link to it) and, "
        "above it, what the file defines, with the maths of each docstring drawn. "
        f"{where}\n\n"
        '<table class="tv-code-index">\n<thead><tr><th>#</th><th>file</th><th>what it is'
        "</th></tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"
    )
    return written
