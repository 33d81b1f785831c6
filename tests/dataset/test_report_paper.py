"""The report for a paper: HR/SR window patches in the LAM figure, colour-bar ticks, DI per LR
size, and ``--format html,pdf,svg,tex`` (figures as SVG/PDF, DI tables as LaTeX booktabs), each
file parsed back and checked against the store's numbers."""
from __future__ import annotations

import re
import statistics
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import astronaut_images
from PIL import Image

import lamfast
from lamfast.dataset import RunConfig, ResultStore, run, write_report
from lamfast.dataset.paper import parse_formats, tex_escape
from lamfast.dataset.report import COLOUR_BAR_TICKS, colour_bar
from lamfast.dataset.stats import model_summary
from lamfast.errors import LamfastError

EDSR_LABEL = "EDSR_x4 50%"  # LaTeX's special characters in a name
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from lamfast.models import EDSR

    tmp = tmp_path_factory.mktemp("paper")
    images = astronaut_images(tmp / "imgs", {"a.png": (0, 0, 128, 128), "b.png": (64, 64, 192, 192),
                                             "c.png": (96, 32, 160, 96)})  # LR 32², 32² and 16²
    torch.manual_seed(0)
    edsr = tmp / "edsr.pt"
    torch.save(EDSR(n_resblocks=1, n_feats=8, scale=4, rgb_range=1.0).state_dict(), edsr)
    store = tmp / "s.sqlite"
    run([str(images)], ["TinySR=bundled", f"{EDSR_LABEL}={edsr}"], store,
        RunConfig(windows="top:2:16", lam=lamfast.LAMParams(fold=3)), progress=False)
    out = tmp / "report"
    index = write_report(store, out, formats="html,pdf,svg,tex")
    with ResultStore(store) as db:
        rows = [r for r in db.rows(with_maps=True) if r["status"] == "ok"]
    return {"store": store, "out": out, "index": index, "rows": rows, "images": images, "edsr": edsr}


def _one(out: Path, pattern: str) -> Path:
    found = sorted(out.glob(pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


# ---- LaTeX ------------------------------------------------------------------------------------------

def _unescape(cell: str) -> str:
    for ch in "&%$#_{}":
        cell = cell.replace("\\" + ch, ch)
    return cell


def parse_tex_table(text: str) -> dict:
    """A booktabs table back into its caption, column spec, header and rows (cells unescaped)."""
    assert text.count(r"\begin{table}") == text.count(r"\end{table}") == 1
    assert text.count(r"\begin{tabular}") == text.count(r"\end{tabular}") == 1
    order = [text.index(k) for k in (r"\toprule", r"\midrule", r"\bottomrule")]
    assert order == sorted(order)
    align = re.search(r"\\begin\{tabular\}\{([lcr]+)\}", text).group(1)
    caption = re.search(r"\\caption\{(.*)\}\n", text).group(1)
    body = text[order[0] + len(r"\toprule"):order[2]]
    head, rows = body.split(r"\midrule")

    def cells(line: str) -> list[str]:
        assert line.endswith(r"\\"), line
        # split on & not preceded by a backslash
        return [_unescape(c.strip()) for c in re.split(r"(?<!\\)&", line[:-2])]

    header = cells(head.strip())
    parsed = [cells(line.strip()) for line in rows.strip().splitlines()]
    assert all(len(r) == len(align) for r in [header, *parsed]), (align, header, parsed)
    return {"align": align, "caption": caption, "header": header, "rows": parsed}


def test_tex_tables_hold_the_report_numbers(report):
    out, rows = report["out"], report["rows"]
    per_model = parse_tex_table(_one(out / "tables", "*_di_per_model.tex").read_text())
    assert per_model["header"][:4] == ["Model", "LR size", "Windows", "Mean DI"]
    got = {r[0]: r for r in per_model["rows"]}
    assert set(got) == {"TinySR", EDSR_LABEL}
    for model, cells in got.items():
        dis = [r["di"] for r in rows if r["model"] == model]
        st = model_summary(dis)
        assert cells[1] == "16x16, 32x32"  # the LR sizes the model saw
        assert int(cells[2]) == len(dis) == 6
        assert float(cells[3]) == pytest.approx(st["mean"], abs=5e-5)
        lo, hi = (float(v) for v in cells[4].strip("[]").split(","))
        assert lo == pytest.approx(st["ci_low"], abs=5e-5) and hi == pytest.approx(st["ci_high"], abs=5e-5)
        assert cells[5] == "--"  # fold 3 has no fold/2 sub-sum
        psnr = statistics.fmean({r["image"]: r["psnr"] for r in rows if r["model"] == model}.values())
        assert float(cells[7]) == pytest.approx(psnr, abs=5e-3)
    assert "Y channel" in per_model["caption"] and "fold 3, sigma 1.2, kernel 9" in per_model["caption"]
    assert "lr_input" not in per_model["caption"] and "windows_from" not in per_model["caption"]

    sizes = parse_tex_table(_one(out / "tables", "*_di_per_size.tex").read_text())
    assert [r[0] for r in sizes["rows"]] == ["16x16", "32x32"]  # smallest first, never pooled
    assert [int(r[1]) for r in sizes["rows"]] == [1, 2]
    assert sorted(h.removesuffix(" mean DI (n)") for h in sizes["header"][2:]) == sorted(["TinySR", EDSR_LABEL])
    for row in sizes["rows"]:
        for model, cell in zip([h.removesuffix(" mean DI (n)") for h in sizes["header"][2:]], row[2:]):
            dis = [r["di"] for r in rows if r["model"] == model and r["lr_size"] == row[0]]
            mean, n = re.fullmatch(r"([\d.]+) \((\d+)\)", cell).groups()
            assert float(mean) == pytest.approx(statistics.fmean(dis), abs=5e-5) and int(n) == len(dis)

    paired = parse_tex_table(_one(out / "tables", "*_paired.tex").read_text())
    assert [r[2] for r in paired["rows"]] == ["windows", "images"]
    assert [int(r[4]) for r in paired["rows"]] == [6, 3] and {r[3] for r in paired["rows"]} == {"16x16, 32x32"}
    images = parse_tex_table(_one(out / "tables", "*_per_image.tex").read_text())
    assert [r[0] for r in images["rows"]] == ["a.png", "b.png", "c.png"]


def test_tex_escape():
    assert tex_escape("a_b & 50% $x$ #1 {y} ~^\\") == \
        r"a\_b \& 50\% \$x\$ \#1 \{y\} \textasciitilde{}\textasciicircum{}\textbackslash{}"


# ---- SVG and PDF ------------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def _svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg"
    return ["".join(t.itertext()).strip() for t in root.iter(SVG + "text")]


def test_svg_figures_parse_and_keep_their_text(report):
    out = report["out"]
    hist = _svg_texts(_one(out / "figures", "*_di_histograms.svg"))
    assert "TinySR" in hist and EDSR_LABEL in hist and "DI" in hist
    scatter = _svg_texts(_one(out / "figures", "*_di_psnr.svg"))
    assert "PSNR (dB)" in scatter and "mean DI" in scatter and {"TinySR", EDSR_LABEL} <= set(scatter)
    lam_svg = _one(out / "figures", "*_lam_figure.svg")
    texts = _svg_texts(lam_svg)
    assert {"HR", "TinySR", EDSR_LABEL, "|attribution| / peak"} <= set(texts)
    assert {"0.00", "0.25", "0.50", "0.75", "1.00"} <= set(texts)  # the colour bar's ticks
    windows_drawn = len([t for t in texts if t.startswith("DI ")])
    # every model cell names its panels: the SR output, then the LAM and KDE blends
    assert texts.count("SR") == texts.count("LAM") == texts.count("KDE") == windows_drawn > 0
    root = ET.parse(lam_svg).getroot()
    images = list(root.iter(SVG + "image"))
    windows = len(re.findall(r"<tr><td class='name'>[^<]*<br>h=", report["index"].read_text()))
    assert windows >= 3
    assert len(images) >= windows * 3  # HR and one cell per model, each window


def _pdf_objects(data: bytes) -> tuple[int, int]:
    """(pages, image XObjects) of a PDF, read from its objects (streams inflated where compressed)."""
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", data))
    images = len(re.findall(rb"/Subtype\s*/Image\b", data))
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            zlib.decompress(m.group(1))
        except zlib.error:
            pytest.fail("a PDF stream does not inflate")
    return pages, images


def test_pdf_figures_parse(report):
    out = report["out"]
    for stem in ("di_histograms", "di_psnr", "lam_figure"):
        pages, images = _pdf_objects(_one(out / "figures", f"*_{stem}.pdf").read_bytes())
        assert pages == 1, stem
        if stem == "lam_figure":
            assert images >= 9
        else:
            assert images == 0


def test_outputs_are_reproducible_and_linked(report, tmp_path):
    out = report["out"]
    again = write_report(report["store"], tmp_path / "again", formats=["svg", "pdf", "tex"]).parent
    for path in sorted(out.glob("figures/*")) + sorted(out.glob("tables/*")):
        assert (again / path.relative_to(out)).read_bytes() == path.read_bytes(), path.name
    text = report["index"].read_text()
    for path in sorted(out.glob("figures/*")) + sorted(out.glob("tables/*")):
        assert f"href='{path.relative_to(out).as_posix()}'" in text
    html_only = write_report(report["store"], tmp_path / "html")
    assert not (html_only.parent / "figures").exists() and not (html_only.parent / "tables").exists()
    assert "For a paper" not in html_only.read_text()


def test_formats_are_checked_before_any_work(tmp_path, capsys):
    from lamfast.cli import main

    assert parse_formats("html,PDF, tex") == ("html", "pdf", "tex")
    for bad in ("html,jpg", "", ","):
        with pytest.raises(LamfastError, match="formats must be some of html, pdf, svg, tex"):
            parse_formats(bad)
    assert main(["report", str(tmp_path / "missing.sqlite"), "-o", str(tmp_path / "r"), "--format", "png"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--format" in err or "formats" in err
    assert not (tmp_path / "r").exists()


# ---- the LAM figure's patches, the colour bar, DI per size ------------------------------------------

def test_lam_figure_shows_hr_and_each_models_sr_patch(report):
    rows, out = report["rows"], report["out"]
    text = report["index"].read_text()
    assert "<th>HR</th>" in text and "alt='HR of " in text and "alt='SR, LAM and KDE of " in text
    assert "img/colour_bar.png" in text
    # every row keeps its window of the SR output: equal to the model's output there
    from lamfast.models import bundled_model
    from lamfast.request import prepare_input

    model = bundled_model().model
    row = next(r for r in rows if r["model"] == "TinySR")
    x = prepare_input(model, row["image"]).tensor()
    with torch.no_grad():
        sr = model(x[None])[0]
    h, w, s = row["h"], row["w"], row["size"]
    torch.testing.assert_close(torch.from_numpy(row["sr_patch"]), sr[:, h:h + s, w:w + s], rtol=1e-5, atol=1e-6)
    # and the figure's HR patch is the HR image in that window
    from lamfast.dataset.report import _hr_patch_png

    name = _hr_patch_png(row, out / "img")
    hr = prepare_input(None, row["image"], scale=4).views()[0]
    want = hr.crop((w, h, w + s, h + s)).resize((160, 160), Image.NEAREST)
    assert np.array_equal(np.asarray(Image.open(out / "img" / name)), np.asarray(want.convert("RGB")))


def test_colour_bar_has_ticks():
    bar = np.asarray(colour_bar(160).convert("L"))
    pad, bar_w = 6, 10
    for t in COLOUR_BAR_TICKS:
        y = pad + round((1.0 - t) * 159)
        assert (bar[y, bar_w:bar_w + 4] < 80).all(), t  # the tick mark
        assert (bar[y - 4:y + 5, bar_w + 5:] < 128).any(), t  # its label
    # between ticks, no mark
    assert (bar[pad + 20, bar_w:bar_w + 4] > 200).all()
    # top red (peak), bottom white (zero)
    top, bottom = np.asarray(colour_bar(160))[pad, 2], np.asarray(colour_bar(160))[pad + 159, 2]
    assert top[0] > 100 and top[1] < 60 and bottom.min() > 240


def test_report_breaks_di_down_per_lr_size(report):
    text = report["index"].read_text()
    assert "<h3>DI per LR size</h3>" in text
    table = text[text.index("id='sizes-"):]
    table = table[:table.index("</table>")]
    assert table.index(">16x16<") < table.index(">32x32<")
    assert "pooled below" in text  # two sizes: the visible note
