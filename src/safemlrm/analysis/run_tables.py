"""Every table of a run's report, in order.

Apart from ``tables`` (which defines Table and the single tables) so that ``study``, which builds its
table with ``tables``, is not imported back by it: no import circle.
"""

from __future__ import annotations

from safemlrm.analysis.run_analysis import RunAnalysis
from safemlrm.analysis.study import study_table
from safemlrm.analysis.tables import (
    Table,
    agreement_table,
    harm_attack_table,
    harm_category_table,
    harm_overview_table,
    over_refusal_table,
    self_correction_table,
    tax_table,
)


def run_tables(a: RunAnalysis) -> list[Table]:
    return [
        harm_overview_table(a),
        harm_category_table(a),
        harm_attack_table(a),
        tax_table(a),
        self_correction_table(a),
        over_refusal_table(a),
        agreement_table(a),
        study_table(a),
    ]
