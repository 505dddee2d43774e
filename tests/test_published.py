"""The published numbers in the READMEs are those of ``published.json``.

Every README table row that ``emoshare_sb/analysis/published.json`` names
(``readme`` fields) must show exactly the file's numbers, and every row of
those tables must be named, so a published number cannot be changed, added
or dropped in one place only.
"""

import pathlib
import re

import pytest

from emoshare_sb.analysis.published import published_results

REPO = pathlib.Path(__file__).resolve().parents[1]
# Scores as the READMEs and the file write them: decimals (".553", "0.553",
# "77.36") and whole percentages ("60 %"); not digits inside names
# ("Eval1.6", "paUAR-50", "2024").
NUMBER = re.compile(r"(?<![\w.\-])(\d*\.\d+|\d+(?= ?%))(?![\w.])")


def numbers(text):
    """The scores written in a cell, as floats, in order."""
    return [float(match) for match in NUMBER.findall(text)]


def readme_tables(path):
    """The Markdown tables of a README: lists of ``{header: cell}`` rows."""
    tables, header = [], None
    for line in (REPO / path).read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = None
            continue
        # Cells split on the pipes that are not escaped (`a\\|b` in code).
        cells = [
            cell.strip()
            for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))
        ]
        if header is None:
            header = cells
            tables.append([])
        elif not all(set(cell) <= set("-: ") for cell in cells):
            tables[-1].append(dict(zip(header, cells, strict=True)))
    return tables


def find_row(path, first_cell, column):
    """The table row of ``path`` whose first cell is ``first_cell``."""
    for table in readme_tables(path):
        for row in table:
            if next(iter(row.values())) == first_cell and (
                column is None or column in row
            ):
                return row
    raise AssertionError(f"{path}: no table row {first_cell!r}")


def expected_rows():
    """``{(file, row, column): [numbers]}`` from published.json, in file order."""
    published = published_results()
    rows = {}

    def add(locator, values):
        key = (locator["file"], locator["row"], locator.get("column"))
        rows.setdefault(key, []).extend(values)

    for system in published["compare23"]["systems"]:
        for locator in system.get("readme", []):
            add(locator, [system[k] for k in ("devel", "test") if system[k]])
    encoders = published["compare23"]["encoders_devel_spearman"]
    for encoder, value in encoders["values"].items():
        add({**encoders["readme"], "row": encoder}, [value])
    for system in published["iemocap"]["systems"]:
        for locator in system.get("readme", []):
            keys = locator.get("values", ["wa", "ua"])
            add(locator, [system[k] for k in keys if system[k] is not None])
    for anchor in published["msp_podcast"]["anchors"]:
        for locator in anchor.get("readme", []):
            add(locator, numbers(anchor["published"]))
    return rows


@pytest.mark.parametrize(
    "key, values",
    sorted(expected_rows().items()),
    ids=lambda x: " / ".join(str(p) for p in x) if isinstance(x, tuple) else "",
)
def test_readme_row_shows_the_published_numbers(key, values):
    path, first_cell, column = key
    row = find_row(path, first_cell, column)
    cells = [row[column]] if column else list(row.values())[1:]
    shown = [n for cell in cells for n in numbers(cell)]
    assert sorted(shown) == pytest.approx(sorted(values), abs=5e-4), (
        f"{path}, row {first_cell!r}: the README shows {shown}, "
        f"published.json {values}"
    )


# The README tables of published numbers: (file, a header cell of the table,
# the header of the column holding published numbers, or None for all but
# the first column). Each of their rows with a number must be named in
# published.json.
PUBLISHED_TABLES = [
    ("README.md", "devel mean ρ", None),
    ("README.md", "downstream params", "published"),
    ("README.md", "devel ρ", "devel ρ"),
    ("recipes/IEMOCAP/README.md", "UA %", None),
    ("recipes/MSP-Podcast/README.md", "score", None),
]


@pytest.mark.parametrize("path, marker, column", PUBLISHED_TABLES)
def test_every_published_number_in_readme_tables_is_in_the_file(
    path, marker, column
):
    named = {(f, row, c) for f, row, c in expected_rows()}
    tables = [t for t in readme_tables(path) if t and marker in t[0]]
    assert tables, f"{path}: no table with a {marker!r} column"
    for row in tables[0]:
        first = next(iter(row.values()))
        cells = [row[column]] if column else list(row.values())[1:]
        if any(numbers(cell) for cell in cells):
            assert (path, first, column) in named, (
                f"{path}: row {first!r} shows published numbers that "
                "emoshare_sb/analysis/published.json does not hold"
            )


def test_number_pattern():
    assert numbers("Eval1.6 .77/.70; +15 dB .73; ≈60 % (5 % on Eval1.11)") == [
        0.77,
        0.70,
        0.73,
        60,
        5,
    ]
    assert numbers("(IEMOCAP UA 76.78 %)") == [76.78]
    assert numbers("baseline .311; best Odyssey 2024 .357; paUAR-50") == [
        0.311,
        0.357,
    ]
