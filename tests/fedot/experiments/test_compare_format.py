"""Summary tables: mean ± sample std over seeds, and the mean alone from one seed."""

from __future__ import annotations

from fedot.experiments.compare import _mean_std, format_stat, markdown_table


def test_one_seed_has_no_spread_and_two_have_the_sample_std() -> None:
    assert format_stat(_mean_std([0.5])) == "0.5000"
    assert format_stat(_mean_std([0.5, 0.7]), 3) == "0.600 ± 0.141"  # sample std 0.1414
    assert format_stat(None) == "–"


def test_markdown_table_of_one_seed_prints_no_plus_minus() -> None:
    summary = {"title": "t", "seeds": [0], "metrics": ["accuracy"],
               "results": {"a": {"accuracy": _mean_std([0.9]), "round_time_s": _mean_std([0.1]),
                                 "rounds": 3}}}
    text = markdown_table(summary)
    assert "±" not in text.split("\n", 3)[3] and "one seed: no spread" in text
    assert "| a | 0.9000 | 0.100 | 3 |" in text
