"""The legacy importer on a slice of the old system's real files (fixtures/legacy: sizes 224-229 of a few
combinations, and a combined_overall.csv slice), plus malformed inputs, idempotency and safety."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from analysis.errors import AnalysisError
from analysis.legacy import importer as legacy
from analysis.load import load

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
# 3 sizes x (vgg16 gemm h100, vgg16 gemm l40s, googlenet implicit_gemm l40s, vgg16 guess v100 from combined)
POINTS = 12
LAYERS = 3 * (13 + 13 + 57)


def _read(root: Path, table: str):
    return ds.dataset(
        str(root),
        format="parquet",
        partitioning="hive",
        exclude_invalid_files=False,
        ignore_prefixes=[".", "_", "run", "points" if table == "layers" else "layers"],
    ).to_table()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, legacy.ImportReport]:
    out = tmp_path_factory.mktemp("legacy") / "results-legacy"
    return out, legacy.import_legacy([FIXTURES], out)


def test_imports_the_slice(imported):
    out, rep = imported
    assert rep.issues == [] and rep.unmatched_layers == 0
    assert (rep.points, rep.layers) == (POINTS, LAYERS)
    # combined_overall.csv: vgg16 gemm h100 came with its own file (checked, identical, skipped); guess v100 did not
    assert (rep.combined_skipped, rep.combined_mismatch) == (3, 0)
    p = _read(out, "points").to_pandas()
    assert len(p) == POINTS and set(p["stage"]) == {"legacy"}
    assert set(p["algo"]) == {"gemm", "implicit_gemm", "guess"}
    assert set(p["gpu"]) == {"h100", "l40s", "v100"}
    assert (p["n"] == 20).all() and (p["energy_method"] == "legacy_power_average").all()
    assert p["measured_at"].isna().all() and (p["device"] == "cuda").all()
    assert set(p.loc[p["gpu"] == "h100", "device_name"]) == {"NVIDIA H100 NVL"}
    row = p[(p["model"] == "vgg16") & (p["gpu"] == "h100") & (p["input_size"] == 224)].iloc[0]
    assert row["mean_ms"] == pytest.approx(64.60880393981934) and row["p50_ms"] == pytest.approx(64.40488052368164)
    assert row["run_id"] == "legacy-vgg16-gemm-h100"
    assert row["provenance"] == f"{legacy.SOURCE} vgg16_gemm_overall_h100.csv:2"
    assert row["energy_inferences"] == 20 and row["flops"] > 3e10
    guess = p[p["algo"] == "guess"]
    assert guess["provenance"].str.contains("combined_overall.csv:").all()


def test_flags_carry_the_readme_flaws(imported):
    out, _ = imported
    p = _read(out, "points").to_pandas()
    for flags, algo in zip(p["legacy_flags"], p["algo"]):
        assert {
            "timing_includes_host_copies",
            "energy_from_1s_averaged_power",
            "power_sampler_starved",
            "device_from_file_name",
        } <= set(flags)
        assert ("algo_is_heuristic_choice" in flags) == (algo == "implicit_gemm")
    lay = _read(out, "layers").to_pandas()
    assert all({"layer_size_from_architecture", "layer_has_no_median"} <= set(f) for f in lay["legacy_flags"])


def test_layers_get_their_own_sizes(imported):
    out, _ = imported
    lay = _read(out, "layers").to_pandas()
    assert len(lay) == LAYERS
    vgg = lay[(lay["model"] == "vgg16") & (lay["gpu"] == "h100")].set_index(["input_size", "layer_name"])
    assert tuple(vgg.loc[(224, "features.0"), ["in_h", "in_w", "out_h", "out_w"]]) == (224, 224, 224, 224)
    assert tuple(vgg.loc[(224, "features.28"), ["in_h", "out_h", "in_channels"]]) == (14, 14, 512)
    assert tuple(vgg.loc[(226, "features.5"), ["in_h", "out_h"]]) == (113, 113)
    g = lay[lay["model"] == "googlenet"].set_index(["input_size", "layer_name"])
    assert tuple(g.loc[(224, "conv1.conv"), ["in_h", "out_h", "kernel_h", "stride_h"]]) == (224, 112, 7, 2)
    assert g.loc[(224, "inception5b.branch1.conv"), "in_h"] == 7
    # execution order, one index per layer per point
    assert sorted(vgg.loc[224, "layer_index"]) == list(range(13))
    assert lay["p50_ms"].isna().all() and lay["mean_ms"].gt(0).all()  # no median in the old files
    assert lay.groupby(["run_id", "input_size"])["share_of_model"].sum().round(9).eq(1).all()


def test_load_reads_the_tree(imported):
    out, _ = imported
    res = load(out)
    assert res.report.bad_files == [] and res.report.orphan_layers == 0
    assert (len(res.points), len(res.layers)) == (POINTS, LAYERS)


def test_reimport_is_idempotent(imported, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(imported[0], out)
    before = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    rep = legacy.import_legacy([FIXTURES], out)
    assert (rep.points, rep.layers) == (POINTS, LAYERS)
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == before
    res = load(out)
    assert (len(res.points), len(res.layers)) == (POINTS, LAYERS)
    assert res.report.duplicate_copies == {"points": 0, "layers": 0}


def test_tarball_input(tmp_path):
    tar = tmp_path / "old.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        for name in ("vgg16_gemm_overall_h100.csv", "vgg16_gemm_layers_h100.csv"):
            t.add(FIXTURES / name, arcname=f"results/{name}")
    rep = legacy.import_legacy([tar], tmp_path / "out")
    assert (rep.points, rep.layers, rep.issues) == (3, 39, [])
    p = _read(tmp_path / "out", "points").to_pandas()
    assert p["provenance"].str.startswith(f"{legacy.SOURCE} old.tar.gz!vgg16_gemm_overall_h100.csv:").all()


def _corrupt(folder: Path) -> None:
    lines = (FIXTURES / "vgg16_gemm_overall_h100.csv").read_text().splitlines()
    bad_number = lines[2].split(",")
    bad_number[4] = "12.3.4"
    unknown = lines[3].replace(",gemm,", ",gemmm,")
    (folder / "vgg16_gemm_overall_h100.csv").write_text(
        "\n".join([lines[0], lines[1], ",".join(bad_number), unknown]) + "\n"
    )
    lay = (FIXTURES / "vgg16_gemm_layers_h100.csv").read_text().splitlines()
    (folder / "vgg16_gemm_layers_h100.csv").write_text("\n".join(lay[:-1] + [lay[-1][:25]]) + "\n")  # truncated
    head, *rows = (FIXTURES / "vgg16_gemm_overall_l40s.csv").read_text().splitlines()
    dropped = lambda s: ",".join(f for i, f in enumerate(s.split(",")) if i != 4)  # noqa: E731 - no "mean"
    (folder / "vgg16_gemm_overall_l40s.csv").write_text("\n".join(dropped(r) for r in [head, *rows]) + "\n")
    (folder / "vgg16_sparse_overall_h100.csv").write_text(lines[0] + "\n")  # unknown algorithm in the name


def test_malformed_lines_and_files_are_reported_and_skipped(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _corrupt(src)
    rep = legacy.import_legacy([src], tmp_path / "out")
    issues = {(i.file, i.line): i.reason for i in rep.issues}
    assert "is not a number" in issues[("vgg16_gemm_overall_h100.csv", 3)]
    assert "unknown algorithm 'gemmm'" in issues[("vgg16_gemm_overall_h100.csv", 4)]
    assert "truncated" in issues[("vgg16_gemm_layers_h100.csv", 40)]
    assert "missing column(s) mean" in issues[("vgg16_gemm_overall_l40s.csv", None)]
    assert "no known algorithm" in issues[("vgg16_sparse_overall_h100.csv", None)]
    assert len(rep.issues) == 5
    # the rest is imported: one good points line, 38 good layer lines
    assert (rep.points, rep.layers) == (1, 38)
    assert legacy.main([str(src), "--out", str(tmp_path / "out2")]) == 1


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (
            {"notes.csv": "a,b\n"},
            "the first: notes.csv: skipped: not a <model>_<algo>_<overall|layers>_<gpu>.csv file name",
        ),
        ({}, "no CSV file among them"),
    ],
)
def test_nothing_imported_says_why_and_creates_nothing(tmp_path, capsys, content: dict[str, str], why: str):
    """Was a FileNotFoundError writing the summary into an --out never created, hiding the reason."""
    src = tmp_path / "src"
    src.mkdir()
    for name, text in content.items():
        (src / name).write_text(text)
    assert legacy.main([str(src), "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"error: nothing imported from {src}: ") and why in err[-1]
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("inside", ["", "sub"])
def test_refuses_an_out_in_a_tree_of_real_runs(tmp_path, inside):
    results = tmp_path / "results"
    (results / "stage=full" / "gpu=h100").mkdir(parents=True)
    with pytest.raises(legacy.LegacyError, match="real runs"):
        legacy.import_legacy([FIXTURES / "vgg16_gemm_overall_h100.csv"], results / inside)
    assert legacy.main([str(FIXTURES), "--out", str(results)]) == 2
    assert sorted(p.name for p in results.rglob("*")) == ["gpu=h100", "stage=full"]


def test_refuses_an_out_inside_a_partition(tmp_path):
    with pytest.raises(legacy.LegacyError, match="partition"):
        legacy.import_legacy([FIXTURES], tmp_path / "x" / "stage=legacy" / "gpu=h100")


def test_analysis_of_imported_and_new_results_together(imported, known_tree, tmp_path, capsys):
    """`python -m analysis results results-legacy`: one report over both trees, the old flaws in its warnings."""
    from analysis.__main__ import main

    out, _ = imported
    report_dir = tmp_path / "analysis"
    assert main([str(known_tree), str(out), "--out", str(report_dir)]) == 0
    warnings = pd.read_csv(report_dir / "tables" / "warnings.csv")
    flagged = warnings[warnings["kind"].str.startswith("legacy: ")]
    assert set(flagged["stage"]) == {"legacy"}
    assert set(flagged["kind"]) == {f"legacy: {f}" for f in legacy.POINT_FLAGS} | {"legacy: algo_is_heuristic_choice"}
    h100 = flagged[(flagged["kind"] == "legacy: timing_includes_host_copies") & (flagged["gpu"] == "h100")]
    assert h100["detail"].str.startswith("3 points: model and input stayed on the host").all() and len(h100) == 1
    best = pd.read_csv(report_dir / "tables" / "best.csv")
    assert {"legacy"} < set(best["stage"]) and len(best[best["stage"] == "legacy"]) == POINTS
    # the old H100 NVL rows are slower than the L40S ones (vgg16 gemm, sizes 224, 226, 229 in the slice)
    gpus = pd.read_csv(report_dir / "tables" / "gpus.csv")
    legacy_pair = gpus[(gpus["stage"] == "legacy") & (gpus["gpu_a"] == "h100") & (gpus["gpu_b"] == "l40s")]
    assert legacy_pair.set_index("model").loc["vgg16", ["matched", "a_slower"]].tolist() == [3, 3]
    assert legacy_pair.set_index("model").loc["vgg16", "geomean_p50_ratio"] == pytest.approx(
        (
            (64.40488052368164 / 43.21028709411621)
            * (64.92993545532227 / 43.33072090148926)
            * (65.55763244628906 / 43.59841537475586)
        )
        ** (1 / 3)
    )
    md = (report_dir / "report.md").read_text()
    assert "## GPUs compared" in md
    assert f"under {known_tree} + {out}" in md
    assert f"{LAYERS} layer rows hold no median" in md
    # the layer tables use the mean where the old files hold no median
    shapes = pd.read_csv(report_dir / "tables" / "layer_shapes.csv")
    assert shapes.loc[shapes["gpu"] == "l40s", "best_p50_ms"].gt(0).all()


def test_analysis_refuses_a_tree_given_inside_another(imported, tmp_path):
    from analysis.load import load

    out, _ = imported
    with pytest.raises(AnalysisError, match="inside .* read twice"):
        load([out, out / "stage=legacy"])


def test_a_repeated_line_is_reported_and_the_first_kept(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    head, first, *rest = (FIXTURES / "vgg16_gemm_overall_h100.csv").read_text().splitlines()
    changed = first.split(",")
    changed[4] = "65.0"  # the same size again, another mean (within its min..max)
    (src / "vgg16_gemm_overall_h100.csv").write_text("\n".join([head, first, *rest, ",".join(changed)]) + "\n")
    lay = (FIXTURES / "vgg16_gemm_layers_h100.csv").read_text().splitlines()
    (src / "vgg16_gemm_layers_h100.csv").write_text("\n".join([*lay, lay[1]]) + "\n")
    rep = legacy.import_legacy([src], tmp_path / "out")
    issues = {(i.file, i.line): i.reason for i in rep.issues}
    assert issues == {
        ("vgg16_gemm_overall_h100.csv", 5): "input size 224 batch 1 again (first at line 2); kept the first",
        ("vgg16_gemm_layers_h100.csv", 41): "layer features.0 at size 224 again (first at line 2); kept the first",
    }
    p = _read(tmp_path / "out", "points").to_pandas()
    assert len(p) == 3 and p.loc[p["input_size"] == 224, "mean_ms"].item() == pytest.approx(64.60880393981934)
    assert rep.layers == 39


def test_an_import_without_the_tracer_fails_loudly_rather_than_skipping_every_row(tmp_path, monkeypatch):
    """Tracing needs torch, imported on first use: where it cannot be imported the import stops with that
    error, not one 'cannot trace' row per line counted as sizes the architecture refuses."""
    from analysis.legacy import rows

    def no_torch(model: str, size: int, batch: int):
        raise ModuleNotFoundError("No module named 'torch'")

    monkeypatch.setattr(rows, "_trace", no_torch)
    with pytest.raises(ModuleNotFoundError, match="torch"):
        legacy.import_legacy([FIXTURES], tmp_path / "results-legacy")
