"""The committed tables (figures/tableN*.md, made by `make reproduce`) hold every number of the paper's Tables 1-6 as
transcribed in notebook 11 (`ssod.paper`), in the paper's order, in the table headed "The paper"; no committed table
is wider than 12 columns."""
import re

import pytest

from conftest import md_tables
from ssod import paper

TABLES = {1: "table1", 2: "table2", 3: "table3", 4: "table4", 5: "table5", 6: "table6"}
SUFFIXES = ("_fmnist_scenes",)       # objects in scenes (`make reproduce REPRO_BENCHMARKS=fmnist` makes the others)


def paper_table(path):
    "(header cells, {row label: cells}) of the table headed 'The paper' in `path`."
    tables = md_tables(path.read_text())
    assert "The paper" in tables, f"{path.name}: no table headed 'The paper' (has {list(tables)})"
    return tables["The paper"]


def numbers(cells):
    "The numbers of a row, in order (mean of 'mean ± std' cells; '—' skipped)."
    out = []
    for c in cells:
        m = re.match(r"^(-?\d+(?:\.\d+)?)", c)
        if m:
            out.append(float(m.group(1)))
    return out



def method_rows(n):
    "{method: the paper's numbers in printed order} for Tables 1-3."
    if n == 1:   # Table 1 prints no average: the table adds the mean of its sets, marked as computed
        return {m: v + [round(sum(v[0::2]) / 3, 2), round(sum(v[1::2]) / 3, 2), idacc] for m, (v, idacc) in paper.TABLE1.items()}
    if n == 2:
        return {m: v + list(paper.TABLE2_AVERAGE[m]) + [idacc] for m, (v, idacc) in paper.TABLE2.items()}
    return {m: v + ([] if idacc is None else [idacc]) for m, (v, idacc) in paper.TABLE3.items()}


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_method_tables_hold_every_paper_cell(repo_root, n, suffix):
    path = repo_root / "figures" / f"{TABLES[n]}{suffix}.md"
    _, rows = paper_table(path)
    for method, expected in method_rows(n).items():
        assert method in rows, f"{path.name}: no row {method!r} in the paper's table"
        got = numbers(c for cell in rows[method] for c in cell.split(" / "))
        assert got == expected, f"{path.name}, {method}: paper {expected}, table {got}"


SETTING_COLUMNS = {4: ("alpha", {"fpr95": "fpr95", "auroc": "auroc", "id_acc": "id_acc"}),
                   5: ("balance", {"fpr95": "fpr95", "auroc": "auroc", "id_acc": "id_acc"}),
                   6: ("arch", {"FPR95 vanilla (MSP)": "fpr95_vanilla", "FPR95 SSOD": "fpr95_ssod"})}


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("n", [4, 5, 6])
def test_setting_tables_hold_every_paper_cell(repo_root, n, suffix):
    path = repo_root / "figures" / f"{TABLES[n]}{suffix}.md"
    header, rows = paper_table(path)
    key, columns = SETTING_COLUMNS[n]
    table = getattr(paper, f"TABLE{n}")
    labels = list(rows)
    assert [float(l) if n == 4 else l for l in labels] == table[key], f"{path.name}: rows {labels}"
    for column, field in columns.items():
        assert column in header, f"{path.name}: no column {column!r}"
        got = [numbers([rows[l][header.index(column)]]) for l in labels]
        assert got == [[v] for v in table[field]], f"{path.name}, {column}: paper {table[field]}, table {got}"


def test_no_committed_table_is_wider_than_12_columns(repo_root):
    for path in sorted((repo_root / "figures").glob("*.md")):
        for heading, (header, _) in md_tables(path.read_text()).items():
            assert len(header) + 1 <= 12, f"{path.name}, {heading or 'its table'}: {len(header) + 1} columns"


def test_the_study_regenerates_from_its_committed_records(repo_root, tmp_path):
    """`figures/study_runs/` holds every record the mechanism study reads: run without training, the notebook writes
    the committed tables again, cell for cell. (The default store: the fine-tune control names its vanilla run by its
    folder in the checkout's runs/store, so another store would be another configuration.)"""
    import subprocess, sys
    from pathlib import Path
    r = subprocess.run([str(Path(sys.executable).parent / "papermill"), "nbs/study_mechanism.ipynb",
                        str(tmp_path / "study.ipynb"), "-p", "train", "False", "-p", "figures_dir", str(tmp_path / "figures")], cwd=repo_root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    made = sorted(p.name for p in (tmp_path / "figures").glob("study_*.md"))
    assert made and made == sorted(p.name for p in (repo_root / "figures").glob("study_*.md"))
    for name in made:
        assert (tmp_path / "figures" / name).read_text() == (repo_root / "figures" / name).read_text(), name
