"""Committed notebook outputs are current (made by this library version, from this code), the site renders with
every page, figure and internal link in place, and the GPU machine's command is one line of files that exist."""
import importlib
import html
import inspect
import re
import shutil

import nbformat
import pytest

from conftest import load_script


def docs_script(repo_root, name):
    "A script of docs/ (not a package) loaded as a module."
    return load_script(repo_root / "docs" / f"{name}.py", f"docs_{name}")


@pytest.fixture(scope="module")
def docs(repo_root):
    return docs_script(repo_root, "build")


def test_committed_outputs_are_current(docs):
    names = docs.output_notebooks()
    assert set(docs.TUTORIAL) <= set(names)
    problems = [r for n in names for r in docs.stale_reasons(docs.NBS / n)]
    assert not problems, "\n".join(problems)
    for n in docs.TUTORIAL:   # the tutorial carries its outputs, and its figures stay small
        nb = nbformat.read(docs.NBS / n, as_version=4)
        assert n == "index.ipynb" or docs.has_outputs(nb), f"{n} has no committed outputs: run `make docs`"
        big = [(i, b) for i, b in docs.image_sizes(nb) if b > docs.MAX_IMAGE_BYTES]
        assert not big, f"{n}: figures over {docs.MAX_IMAGE_BYTES} bytes: {big}"


def test_a_stale_output_is_caught(docs, tmp_path):
    path = tmp_path / "00_framework.ipynb"
    shutil.copy(docs.NBS / "00_framework.ipynb", path)
    assert docs.stale_reasons(path) == []
    assert docs.stale_reasons(path, version="99.0") == [
        "00_framework.ipynb: outputs from ssod " + docs.library_version() + ", the library is 99.0: run `make docs`"]
    nb = nbformat.read(path, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code" and c.outputs)
    code.source += "\n# edited after the outputs were made"
    nbformat.write(nb, path)
    assert docs.stale_reasons(path) == ["00_framework.ipynb: code changed since its outputs were made: run `make docs`"]
    del nb.metadata[docs.META_KEY]
    nbformat.write(nb, path)
    assert docs.stale_reasons(path) == ["00_framework.ipynb: outputs were never stamped: run `make docs`"]


def test_site_renders_with_every_page_figure_and_link(docs, tmp_path):
    out = tmp_path / "site"
    names = docs.render(out, log=lambda *a: None)
    wanted = ({p.name for p in docs.NBS.glob("*.ipynb")} | set(docs.guide_pages()) | {"api.md"}
              | {f"api_{m}.md" for m in docs.library_modules()})
    assert names[0] == "index.ipynb" and set(names) == wanted   # every notebook, guide and module has its page
    assert docs.check(out) == []
    index = (out / "index.html").read_text()
    nav = index[index.index("<nav"):index.index("</nav>")]   # grouped as a reader uses it, the tutorial in reading order
    assert [g for g in ("Tutorial", "Reference", "Experiments", "Guides", "API") if f"<b>{g}</b>" in nav] == \
        ["Tutorial", "Reference", "Experiments", "Guides", "API"]
    tutorial = nav[:nav.index("<b>Reference</b>")]
    assert [tutorial.index(f'href="{n[:-6]}.html"') for n in docs.TUTORIAL] == \
        sorted(tutorial.index(f'href="{n[:-6]}.html"') for n in docs.TUTORIAL)
    plain = lambda t: re.sub(r"[`$*_{}\\\s]+", " ", t).strip()
    for m in docs.library_modules():   # every module's whole description on its API page, its notebook's in full
        doc = inspect.getdoc(importlib.import_module(f"ssod.{m}"))
        page = html.unescape(re.sub(r"<[^>]+>", " ", (out / f"api_{m}.html").read_text()))
        assert plain(doc) in plain(page), m
        assert doc == docs.notebook_description(docs.NBS / docs._source_notebook(importlib.import_module(f"ssod.{m}"))), m
    assert 'src="files/figures/fig3_locality_fmnist_scenes.png"' in index and 'href="01_sampler.html"' in index
    assert (out / "files" / "figures" / "fig3_locality_fmnist_scenes.png").is_file()
    assert 'src="mathjax/MathJax.js?config=' in index and "libs/mathjax" not in index  # equations typeset offline
    sampler = (out / "01_sampler.html").read_text()
    assert "#| hide" not in sampler and "test_fail(" not in sampler     # checks stay out of the reader's way
    assert "data:image/png" in sampler                                    # its picture is in the page
    # the check fails on what it is for
    (out / "index.html").write_text(index.replace('href="01_sampler.html"', 'href="01_sampler_gone.html"', 1)
                                    .replace('src="files/figures/fig3_locality_fmnist_scenes.png"', 'src="files/no.png"'))
    problems = docs.check(out)
    assert any("01_sampler_gone.html" in p for p in problems) and any("files/no.png" in p for p in problems), problems
    (out / "02_model.html").unlink()
    (out / "api_losses.html").unlink()
    assert {"no page for 02_model.ipynb", "no page for api_losses.md"} <= set(docs.check(out))


def test_index_renders_in_a_browser(docs, tmp_path):
    """Headless Chromium shows the index page with its figure and its equations typeset by the site's own MathJax (this
    machine reaches no CDN); runs where Playwright and a Chromium are installed."""
    pytest.importorskip("playwright")
    if not shutil.which("chromium") and not shutil.which("chromium-browser"):
        pytest.skip("no chromium on PATH (Debian: apt install chromium)")
    out = tmp_path / "site"
    docs.render(out, log=lambda *a: None)
    r = docs.browser_check(out)
    assert r["title"] == "ssod"
    assert [src for src, width in r["images"] if width > 0] == ["files/figures/fig3_locality_fmnist_scenes.png"], r
    assert r["math"] >= 3 and r["math_errors"] == 0, r   # the equations, typeset by the site's own MathJax


def test_readme_is_the_index_and_fits_a_screen_of_links(docs, repo_root):
    "README.md is made from nbs/index.ipynb, fits in 120 lines, and every local page or file it links exists."
    text = docs.readme_text()
    assert (repo_root / "README.md").read_text() == text, "README.md differs from nbs/index.ipynb: run `make docs`"
    assert len(text.splitlines()) <= 120, f"README.md has {len(text.splitlines())} lines"
    assert "![" in "\n".join(text.splitlines()[:40])        # a picture on its first screen
    missing = [u for u in docs.readme_links(text) if not (repo_root / u.split("#")[0]).exists()]
    assert not missing, f"README.md links to what does not exist: {missing}"


def test_the_gpu_machines_one_line_command(repo_root):
    "docs/gpu.md's command for a bare GPU machine: one line under 2,000 characters, python3, naming files that exist."
    import re
    text = (repo_root / "docs" / "gpu.md").read_text()
    lines = [l for block in re.findall(r"```\n(.*?)```", text, re.S) for l in block.splitlines() if "gpu_check.py" in l]
    bare = [l for l in lines if "--cpu-smoke" not in l]
    assert len(bare) == 1 and len(bare[0]) < 2000 and bare[0].startswith("python3 "), bare
    for line in lines:
        files = [w for w in line.split() if w.endswith(".py")]
        assert files and all((repo_root / f).is_file() for f in files), line


def test_the_tutorial_track_reads_in_half_an_hour(docs):
    counts = docs.tutorial_counts()
    over = {k: (v, docs.TUTORIAL_LIMITS[k]) for k, v in counts.items() if v > docs.TUTORIAL_LIMITS[k]}
    assert not over, f"the tutorial track is over its limits (count, limit): {over}"
    guide = (docs.ROOT / "docs" / "notebooks.md").read_text()   # the guide states what the track measures now
    stated = (f"{counts['words']:,} words of prose, {counts['code_lines']} visible code lines, "
              f"the longest cell {counts['longest_cell']} lines")
    assert stated in guide, f"docs/notebooks.md should say: {stated}"


def test_tutorial_counts_on_a_hand_made_notebook(docs, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## Eq. 7\n\n$$y = 1$$ labels the [blocks](01_sampler.ipynb), $\\gamma$ too."),
                nbformat.v4.new_code_cell("#| export\nx = 1\n\ny = 2  # two lines"),
                nbformat.v4.new_code_cell("#| hide\nassert x == 1"),
                nbformat.v4.new_code_cell("z = 3"),
                nbformat.v4.new_code_cell("#| echo: false\nMarkdown(table)"),   # readers see its output only
                nbformat.v4.new_code_cell("#| default_exp losses")]
    nbformat.write(nb, tmp_path / "t.ipynb")
    # "Eq", "7", "labels", "the", "blocks", "x" (the inline equation), "too": 7 words
    assert docs.tutorial_counts(["t.ipynb"], tmp_path) == {"words": 7, "code_lines": 3, "longest_cell": 2}


@pytest.fixture(scope="module")
def quoted(repo_root):
    return docs_script(repo_root, "quoted")


def test_every_quoted_result_is_in_a_committed_table_or_record(quoted):
    missing = {page: quoted.unsourced(page) for page in quoted.PAGES}
    assert not any(missing.values()), f"numbers no committed table or named record holds: { {p: n for p, n in missing.items() if n} }"


def test_an_invented_result_is_caught(quoted, tmp_path):
    (tmp_path / "figures" / "runs" / "a").mkdir(parents=True)
    (tmp_path / "figures" / "t.md").write_text("| method | AUROC |\n|---|---:|\n| MSP | 91.254 |\n")
    (tmp_path / "figures" / "runs" / "a" / "record.json").write_text('{"id_acc": 0.86483, "seed": 1}')
    page = ("MSP reaches 91.25 (and −91.3 is one decimal: a setting); `make 12.34`; seed 1 of `figures/runs/a` "
            "reaches 86.48% and 86.5; 77.77 is invented.\n```\nrun 55.55\n```\n")
    (tmp_path / "p.md").write_text(page)
    assert quoted.quoted_numbers(page) == ["91.25", "86.48", "77.77"]
    assert quoted.unsourced("p.md", tmp_path) == ["77.77"]
    (tmp_path / "q.md").write_text(page.replace("`figures/runs/a`", "a run"))   # the record is not named: not a source
    assert quoted.unsourced("q.md", tmp_path) == ["86.48", "77.77"]
    (tmp_path / "figures" / "runs" / "step.txt").write_text("SSOD / CE: 1.057x\n")   # a benchmark's text output
    (tmp_path / "s.md").write_text("SSOD's step takes 1.06 times the vanilla one (`figures/runs/step.txt`); 1.09 not.\n")
    assert quoted.unsourced("s.md", tmp_path) == ["1.09"]
    (tmp_path / "s.md").write_text("SSOD's step takes 1.06 times the vanilla one; 1.09 not.\n")   # the file not named
    assert quoted.unsourced("s.md", tmp_path) == ["1.06", "1.09"]
