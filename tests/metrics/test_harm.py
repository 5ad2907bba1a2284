from __future__ import annotations

import pytest
from tests.analysis._rows import row

from safemlrm import plugins
from safemlrm.context import PluginContext
from safemlrm.protocols import Metric
from safemlrm.registry import PluginConfigError


def test_harm_metric_registered_and_computes() -> None:
    metric = plugins.metrics.create(
        "harm", {"by": ["target", "category"], "threshold": 3}, PluginContext(seed=3)
    )
    assert isinstance(metric, Metric)
    rows = [row(5, category="A"), row(2, category="A", sample="s1"), row(3, category="B", sample="s2")]
    out = metric.compute(rows)
    by_cat = {r["category"]: r for r in out}
    assert by_cat["A"]["asr"] == 0.5 and by_cat["A"]["hr"] == 3.5
    assert by_cat["B"]["asr"] == 1.0 and by_cat["B"]["n"] == 1


def test_harm_metric_rejects_unknown_grouping() -> None:
    with pytest.raises(PluginConfigError, match="by"):
        plugins.metrics.create("harm", {"by": ["model"]}, PluginContext())
