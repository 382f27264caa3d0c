"""The aggregation benchmark and its report section (tiny sizes: wiring, not timings)."""

from __future__ import annotations

import math

from fedot.bench.__main__ import _aggregation_lines
from fedot.bench.aggregation import bench_aggregation_paths
from fedot.bench.fedavot import bench_aggregation


def test_aggregation_rows_and_report_lines() -> None:
    # Execute
    paths = bench_aggregation_paths([(3, 1000), (4, 5000)], repeats=1)
    schemes = [bench_aggregation(clients=3, params=2000, repeats=1)]
    lines = _aggregation_lines(paths, schemes)
    # Assert: every arm timed, ratios consistent with the times
    for row in paths:
        for arm in ("floor", "output", "flower", "fedot"):
            assert row[f"{arm}_s"] > 0 and math.isfinite(row[f"{arm}_s"])
        assert math.isclose(row["fedot_vs_flower"], row["fedot_s"] / row["flower_s"])
    assert {"fedavg_s", "fedavot_s", "ffm_s", "floor_s"} <= set(schemes[0])
    table = [line for line in lines if line.startswith("| 3 ") or line.startswith("| 4 ")]
    assert len(table) == 3  # two aggregation rows, one per-scheme row
