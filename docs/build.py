"""The notebooks as a site: execute the notebooks that carry outputs and write them back (stamped with the library
version and their own code), find stale outputs, render every notebook of nbs/ to HTML and check the result.

    python docs/build.py execute [NOTEBOOK ...]   # run them in nbs/ and write the outputs back (default: OUTPUT_NOTEBOOKS)
    python docs/build.py stale                    # list committed outputs that no longer match the library or the code
    python docs/build.py render [OUT]             # nbs/*.ipynb, docs/*.md and an API page per module -> OUT/*.html
                                                  # (default _docs), with the figures they use
    python docs/build.py check [OUT]              # every page built, every image and internal link resolves
    python docs/build.py readme                   # README.md from nbs/index.ipynb (its Markdown and Markdown outputs)
    python docs/build.py browser [OUT]            # a real browser shows the index page with its figure (Playwright
                                                  # and a Chromium: pip install playwright; apt install chromium)

`make docs` runs execute, nbdev_clean, readme, render and check. The site has a page per notebook, per Markdown page of
`docs/` (the guides the README links to) and per module of the library (its exported names, signatures and docstrings). The site uses nbconvert (Jupyter's own converter, installed with
jupyterlab): nbdev's `nbdev_docs` needs Quarto, whose PyPI package downloads its binary at install time.
"""
from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
PAGES = ROOT / "docs"             # docs/*.md: guides rendered as pages of the site
README = ROOT / "README.md"       # made from nbs/index.ipynb (`readme`)
META_KEY = "ssod"                 # notebook metadata key of the stamp (kept by nbdev_clean: settings.ini)
TUTORIAL = ["index.ipynb", "00_framework.ipynb", "01_sampler.ipynb", "02_model.ipynb", "03_losses.ipynb",
            "03b_first_training.ipynb", "13_your_model.ipynb"]   # the tutorial track, in reading order
TUTORIAL_LIMITS = {"words": 3500, "code_lines": 500, "longest_cell": 30}   # read in about 30 minutes
MAX_IMAGE_BYTES = 200_000          # one committed figure (PNG, base64-decoded)
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"   # the configuration nbconvert's pages ask for, served locally
NAV_STYLE = '<nav style="font:13px sans-serif;padding:6px;border-bottom:1px solid #ccc">'  # the links to every page


def is_hidden(cell) -> bool:
    "A code cell readers never see: `#| hide`, or nbdev's `#| default_exp`."
    return any(l.strip() in ("#| hide", "#|hide") or l.startswith("#| default_exp") for l in cell.source.splitlines())


def shows_output_only(cell) -> bool:
    "A `#| echo: false` cell: readers see its Markdown output (a table read from a committed file), not its code."
    return any(l.replace(" ", "") == "#|echo:false" for l in cell.source.splitlines())


def prose_words(markdown: str) -> int:
    "Words of prose: equations and link targets left out."
    text = re.sub(r"\$\$.*?\$\$", " ", markdown, flags=re.S)
    text = re.sub(r"\$[^$]*\$", " x ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return len(re.findall(r"[A-Za-z0-9][\w'’-]*", text))


def code_lines(cell) -> int:
    "Lines a reader sees in a code cell: neither blank nor a directive (`#| ...`)."
    return sum(1 for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#|"))


def tutorial_counts(names=None, nbs: Path = NBS) -> dict:
    "Prose words, visible code lines and the longest visible code cell of the tutorial track."
    words = lines = longest = 0
    for name in names or TUTORIAL:
        for cell in nbformat.read(nbs / name, as_version=4).cells:
            if cell.cell_type == "markdown":
                words += prose_words(cell.source)
            elif cell.cell_type == "code" and not is_hidden(cell) and not shows_output_only(cell):
                lines += code_lines(cell)
                longest = max(longest, code_lines(cell))
    return {"words": words, "code_lines": lines, "longest_cell": longest}


def output_notebooks(nbs: Path = NBS) -> list:
    "The notebooks whose outputs are committed: index and every numbered notebook (the papermill ones run elsewhere)."
    return sorted(p.name for p in nbs.glob("*.ipynb") if p.name == "index.ipynb" or p.name[:2].isdigit())


def code_sha256(nb) -> str:
    "Hash of the notebook's code cells: outputs belong to exactly this code."
    h = hashlib.sha256()
    for c in nb.cells:
        if c.cell_type == "code":
            h.update(c.source.encode() + b"\0")
    return h.hexdigest()


def library_version() -> str:
    import ssod
    return ssod.__version__


def stamp(nb) -> None:
    "Record what produced the outputs: the library version and the code that ran."
    nb.metadata[META_KEY] = {"version": library_version(), "code_sha256": code_sha256(nb)}


def has_outputs(nb) -> bool:
    return any(c.cell_type == "code" and c.get("outputs") for c in nb.cells)


def stale_reasons(path, version: str | None = None) -> list:
    "Why the committed outputs of notebook `path` are stale ([] when they are current)."
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    version = version or library_version()
    s = nb.metadata.get(META_KEY)
    if s is None:  # every output notebook is executed by make docs, so no stamp means it never was
        return [f"{path.name}: outputs were never stamped: run `make docs`"]
    out = []
    if s.get("version") != version:
        out.append(f"{path.name}: outputs from ssod {s.get('version')}, the library is {version}: run `make docs`")
    if s.get("code_sha256") != code_sha256(nb):
        out.append(f"{path.name}: code changed since its outputs were made: run `make docs`")
    return out


def image_sizes(nb) -> list:
    "(cell index, bytes) of every PNG output."
    import base64
    return [(i, len(base64.b64decode(o["data"]["image/png"]))) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if "image/png" in o.get("data", {})]


def _write_atomic(nb, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        nbformat.write(nb, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def execute(names=None, nbs: Path = NBS, timeout: int = 1200, log=print) -> dict:
    "Run each notebook top to bottom in `nbs` (its own folder as working directory) and write it back stamped."
    from nbclient import NotebookClient
    times = {}
    for name in names or output_notebooks(nbs):
        path = nbs / name
        if not path.exists():
            raise FileNotFoundError(f"no notebook {path}")
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(nbs)}}).execute()
        times[name] = time.perf_counter() - t0
        for i, size in image_sizes(nb):
            if size > MAX_IMAGE_BYTES:
                raise ValueError(f"{name}: the figure of cell {i} is {size:,} bytes; keep figures under "
                                 f"{MAX_IMAGE_BYTES:,} (smaller figsize or dpi)")
        stamp(nb)
        _write_atomic(nb, path)
        log(f"{name}: {times[name]:.0f} s")
    return times


# ---- the site

def _markdown_outputs(cell) -> list:
    return [o["data"]["text/markdown"] for o in cell.get("outputs", []) if "text/markdown" in o.get("data", {})]


def _for_readers(nb):
    """Drop what only nbdev needs: `#| hide` cells and the directive lines of the others; a `#| echo: false` cell shows
    only its Markdown output (a table read from a committed file), as text."""
    cells = []
    for c in nb.cells:
        if c.cell_type == "code":
            if is_hidden(c):
                continue
            if shows_output_only(c):
                cells += [nbformat.v4.new_markdown_cell(t) for t in _markdown_outputs(c)]
                continue
            c.source = "\n".join(l for l in c.source.splitlines() if not l.startswith("#|")).strip("\n")
        if c.cell_type == "raw":
            continue
        cells.append(c)
    nb.cells = cells
    return nb


def _title(nb, name: str) -> str:
    for c in nb.cells:
        if c.cell_type == "markdown":
            m = re.search(r"^# (.+)$", c.source, re.M)
            if m:
                return re.sub(r"\$[^$]*\$", "", m.group(1)).strip()
    return name


_LINK = re.compile(r'(href|src)="([^"]+)"')


def _rewrite_links(page: str, nb_dir: Path, out: Path) -> str:
    "Notebook links to their pages; local files a page shows (figures) copied next to the site's pages."
    def sub(m):
        attr, url = m.groups()
        u = urlparse(html.unescape(url))
        if u.scheme or u.netloc or url.startswith("#") or url.startswith("data:"):
            return m.group(0)
        target = unquote(u.path)
        if target.endswith(".ipynb") or (target.endswith(".md") and (nb_dir / target).resolve().parent == PAGES):
            new = Path(target).with_suffix(".html").name + (f"#{u.fragment}" if u.fragment else "")
            return f'{attr}="{new}"'
        src = (nb_dir / target).resolve()
        if src.is_file() and ROOT in src.parents:
            rel = src.relative_to(ROOT)
            dest = out / "files" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
            return f'{attr}="files/{rel.as_posix()}"'
        return m.group(0)   # left as is: `check` reports it if it does not resolve
    return _LINK.sub(sub, page)


def copy_mathjax(out: Path) -> str:
    """MathJax 2 from the jupyter-server-mathjax package (the copy Jupyter serves) into `out/mathjax`, so that the
    equations render offline; its URL relative to the pages. Left out: the accessibility extensions, translations and
    the SVG output, which the configuration below does not load."""
    import jupyter_server_mathjax
    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(src, out / "mathjax", ignore=shutil.ignore_patterns("a11y", "localization", "SVG"))
    return f"mathjax/MathJax.js?config={MATHJAX_CONFIG}"


def guide_pages(pages: Path = PAGES) -> list:
    "The Markdown guides of `docs/` (each becomes a page of the site)."
    return sorted(p.name for p in pages.glob("*.md"))


def _markdown_notebook(text: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])


def library_modules() -> list:
    "The modules of the library (`ssod/_modidx.py` lists them), in the reading order of the notebooks they come from."
    import importlib
    import ssod._modidx as idx
    mods = {m.split(".")[1] for m in idx.d["syms"]} - {"_modidx"}
    return sorted(mods, key=lambda m: (_source_notebook(importlib.import_module(f"ssod.{m}")), m))


def _signature(obj) -> str:
    import inspect
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def api_notebook(module: str):
    """A page of `ssod.<module>`: its docstring, then every name of its `__all__` with its signature and docstring
    (classes also their public methods)."""
    import importlib, inspect
    mod = importlib.import_module(f"ssod.{module}")
    cells = [f"# ssod.{module}\n\n{inspect.getdoc(mod) or ''}\n\nFrom [{_source_notebook(mod)}]"
             f"({_source_notebook(mod)}).".replace("From []().", "")]
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if inspect.isclass(obj):
            text = f"## {name}\n\n```python\nclass {name}{_signature(obj)}\n```\n\n{inspect.getdoc(obj) or ''}"
            for m, f in vars(obj).items():
                f = f.fget if isinstance(f, property) else getattr(f, "__func__", f)
                if not m.startswith("_") and callable(f) and f.__doc__:
                    text += f"\n\n- `{m}{_signature(f)}`: {inspect.getdoc(f).splitlines()[0]}"
        elif callable(obj):
            text = f"## {name}\n\n```python\n{name}{_signature(obj)}\n```\n\n{inspect.getdoc(obj) or ''}"
        else:
            text = f"## {name}\n\n```python\n{name} = {html.escape(repr(obj)[:300])}\n```"
        cells.append(text)
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(c) for c in cells])


def _source_notebook(mod) -> str:
    "The notebook a module is exported from (its 'File to edit' line), as a link target."
    m = re.search(r"File to edit: \.\./nbs/(\S+\.ipynb)", Path(mod.__file__).read_text())
    return m.group(1) if m else ""


def notebook_description(path) -> str:
    "The description a notebook gives its module: the blockquote under its title, all of its lines."
    first = nbformat.read(path, as_version=4).cells[0].source
    return " ".join(line[1:].strip() for line in first.splitlines() if line.startswith(">"))


def api_index(modules) -> str:
    return "# API reference\n\nEvery module of the library, with every exported name, its signature and docstring:\n\n" + \
        "\n".join(f"- [ssod.{m}](api_{m}.md)" for m in modules)


def nav_groups(names, guides) -> list:
    """The site's navigation as a reader uses it: (group, pages) for the tutorial track in reading order, the reference
    notebooks by layer (their numbers), the experiment notebooks (papermill), the guides and the API."""
    reference = sorted(n for n in names if n[:2].isdigit() and n not in TUTORIAL)
    experiments = sorted(n for n in names if not n[:2].isdigit() and n not in TUTORIAL)
    return [("Tutorial", [n for n in TUTORIAL if n in names]), ("Reference", reference), ("Experiments", experiments),
            ("Guides", list(guides)), ("API", ["api.md"])]


def nav_html(groups) -> str:
    "One line per group: its name, then a link to each of its pages."
    link = lambda n: f'<a href="{Path(n).with_suffix(".html").name}">{html.escape(Path(n).stem)}</a>'
    return "".join(f'<div class="ssod-nav-group"><b>{g}</b>: {" · ".join(link(n) for n in pages)}</div>'
                   for g, pages in groups if pages)


def render(out=ROOT / "_docs", nbs: Path = NBS, pages: Path = PAGES, log=print) -> list:
    """Every notebook of `nbs`, every guide of `pages` and an API page per module as HTML pages in `out` (written to a
    temporary folder, then moved into place)."""
    from nbconvert import HTMLExporter
    out = Path(out)
    tmp = Path(tempfile.mkdtemp(dir=out.parent if out.parent.exists() else None, prefix=f".{out.name}."))
    try:
        names = sorted(p.name for p in nbs.glob("*.ipynb"))
        names = (["index.ipynb"] if "index.ipynb" in names else []) + [n for n in names if n != "index.ipynb"]
        docs = {n: (_for_readers(nbformat.read(nbs / n, as_version=4)), nbs) for n in names}
        docs |= {n: (_markdown_notebook((pages / n).read_text()), pages) for n in guide_pages(pages)}
        modules = library_modules()
        docs["api.md"] = (_markdown_notebook(api_index(modules)), pages)
        docs |= {f"api_{m}.md": (api_notebook(m), nbs) for m in modules}
        nav = nav_html(nav_groups(names, guide_pages(pages)))
        exporter = HTMLExporter(template_name="lab", mathjax_url=copy_mathjax(tmp))
        # every page is this project's own text, so the sanitiser nbconvert runs on each code cell (already escaped by
        # pygments) guards against nothing here and takes a third of the build
        exporter.register_filter("clean_html", lambda html: html)
        for n, (nb, base) in docs.items():
            body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": _title(nb, n)}})
            body = body.replace("<body", f'<body data-ssod-page="{n}"', 1)
            body = re.sub(r"<body[^>]*>", lambda m: m.group(0) + NAV_STYLE + nav + "</nav>", body, count=1)
            if n.startswith("api"):   # the API pages link to each other as pages
                body = re.sub(r'href="(api_?\w*)\.md"', r'href="\1.html"', body)
            (tmp / Path(n).with_suffix(".html").name).write_text(_rewrite_links(body, base, tmp), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"{len(docs)} pages in {out}")
    return list(docs)


def check(out=ROOT / "_docs", nbs: Path = NBS) -> list:
    "Problems of a rendered site: a notebook without its page, an image or an internal link that does not resolve."
    out = Path(out)
    wanted = [p.name for p in nbs.glob("*.ipynb")] + guide_pages() + ["api.md"] + [f"api_{m}.md" for m in library_modules()]
    problems = [f"no page for {n}" for n in wanted if not (out / Path(n).with_suffix(".html").name).exists()]
    ids = {}
    for page in out.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        for tag, attr, url in re.findall(r'<(\w+)[^>]*?\s(href|src)="([^"]+)"', text):
            u = urlparse(html.unescape(url))
            if u.scheme or u.netloc or url.startswith("data:"):
                continue
            target = (page.parent / unquote(u.path)) if u.path else page
            if not target.is_file():
                problems.append(f"{page.name}: {tag} {attr}={url!r} does not resolve")
            elif u.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = set(re.findall(r'\sid="([^"]+)"', target.read_text(encoding="utf-8")))
                if u.fragment not in ids[target]:
                    problems.append(f"{page.name}: link {url!r}: no anchor #{u.fragment} in {target.name}")
    return problems


def browser_check(out=ROOT / "_docs", page: str = "index.html", executable: str | None = None) -> dict:
    """Open `page` in headless Chromium (Playwright): its title, every image's decoded size (0 = not displayed), and the
    number of equations MathJax typeset and of those it could not."""
    from playwright.sync_api import sync_playwright
    executable = executable or shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable)
        tab = browser.new_page()
        tab.goto((Path(out).resolve() / page).as_uri())
        tab.wait_for_load_state("load")
        images = tab.evaluate("Array.from(document.images).map(i => [i.getAttribute('src').slice(0, 60), i.naturalWidth])")
        tab.wait_for_function("window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 && "
                              "MathJax.Hub.queue.running === 0", timeout=30_000)
        math = tab.evaluate("[document.querySelectorAll('.MathJax, .MathJax_Display').length, "
                            "document.querySelectorAll('.MathJax_Error, merror').length]")
        title = tab.title()
        browser.close()
    return {"title": title, "images": images, "math": math[0], "math_errors": math[1]}


def readme_text(nbs: Path = NBS) -> str:
    """README.md as made from `index.ipynb`: its Markdown cells and the Markdown outputs of its code cells (tables read
    from committed files), with links made relative to the repository's root."""
    nb = nbformat.read(nbs / "index.ipynb", as_version=4)
    parts = []
    for c in nb.cells:
        if c.cell_type == "markdown":
            parts.append(c.source)
        elif c.cell_type == "code":
            parts += _markdown_outputs(c)
    def fix(m):
        label, url = m.groups()
        u = urlparse(url)
        if u.scheme or u.netloc or url.startswith("#"):
            return m.group(0)
        path = os.path.normpath(os.path.join("nbs", u.path)) + (f"#{u.fragment}" if u.fragment else "")
        return f"[{label}]({path})"
    text = "\n\n".join(p.strip("\n") for p in parts) + "\n"
    return re.sub(r"\[([^\]]*)\]\(([^)\s]+)\)", fix, text)


def readme_links(text: str) -> list:
    "The local targets the README links to (files of the repository)."
    return [u for u in re.findall(r"\]\(([^)\s]+)\)", text) if not urlparse(u).scheme and not u.startswith("#")]


def site_size(out=ROOT / "_docs") -> int:
    return sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv.pop(0) if argv else "help"
    if cmd == "execute":
        execute(argv or None)
        return 0
    if cmd == "readme":
        README.write_text(readme_text())
        print(f"{README.name}: {len(README.read_text().splitlines())} lines from nbs/index.ipynb")
        return 0
    if cmd == "stale":
        reasons = [r for n in output_notebooks() for r in stale_reasons(NBS / n)]
        print("\n".join(reasons) or "every committed output is current")
        return 1 if reasons else 0
    if cmd == "render":
        render(argv[0] if argv else ROOT / "_docs")
        return 0
    if cmd == "check":
        out = argv[0] if argv else ROOT / "_docs"
        problems = check(out)
        print("\n".join(problems) or f"site OK: {len(list(Path(out).glob('*.html')))} pages, "
                                      f"{site_size(out) / 1e6:.1f} MB")
        return 1 if problems else 0
    if cmd == "browser":
        r = browser_check(argv[0] if argv else ROOT / "_docs")
        print(r)
        return 0 if r["images"] and all(w > 0 for _, w in r["images"]) else 1
    print(__doc__)
    return 0 if cmd in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
