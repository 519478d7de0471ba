"""docs/results-schema.md is the code's schema, every column explained: a column added without a meaning,
or a document not regenerated, fails here."""

from harness.results import columns
from harness.results.schema import LAYERS, POINTS
from tests.conftest import REPO


def test_every_column_has_a_meaning_and_no_meaning_is_stale():
    assert set(columns.POINT_COLUMNS) == set(POINTS.names)
    assert set(columns.LAYER_COLUMNS) == set(LAYERS.names)


def test_the_document_is_generated_from_the_code():
    assert (
        REPO / "docs" / "results-schema.md"
    ).read_text() == columns.markdown(), "regenerate it: python -m harness.results.columns > docs/results-schema.md"


def test_energy_methods_include_the_imported_ones():
    assert {"nvml_counter", "nvml_power_integral", "legacy_power_average", "none"} <= set(columns.ENERGY_METHODS)
    assert "legacy_power_average" in columns.markdown()
