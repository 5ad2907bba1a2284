from __future__ import annotations

from pathlib import Path

import pytest

from safemlrm.core.records import RunData
from safemlrm.report import write_reports
from safemlrm.testing.synthetic import synthetic_run


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> RunData:
    return synthetic_run(image_dir=tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def report_dir(synthetic: RunData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_reports(synthetic, out, {"this_invocation": {"target_calls": 0, "judge_calls": 0}})
    return out
