"""What a person sees with kubectl on the real API server: the CRDs' printer columns, short
names and category, and `kubectl wait` on a Rollback the operator finished."""

from __future__ import annotations

import re

import pytest

from sandbox import manifests
from tests.e2e.bed import Bed

pytestmark = pytest.mark.e2e


def _table(bed: Bed, *args: str) -> list[dict[str, str]]:
    """`kubectl get` output as rows keyed by the header's column names."""
    lines = bed.cluster.kubectl("get", *args).stdout.splitlines()
    columns = list(re.finditer(r"\S+(?: \S+)*", lines[0]))  # names may hold one space
    ends = [c.start() for c in columns[1:]] + [None]
    return [
        {c.group(): line[c.start() : end].strip() for c, end in zip(columns, ends, strict=True)}
        for line in lines[1:]
    ]


def test_kubectl_get_rb_and_rbp_show_the_printer_columns_of_a_finished_rollback(bed: Bed) -> None:
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("shown", reason="Errors after 1.4"))
    bed.cluster.kubectl("wait", "--for=condition=Ready", "rollback/shown", "--timeout=30s")

    (row,) = _table(bed, "rb")
    assert list(row) == ["NAME", "PHASE", "MODE", "TARGETS", "REASON", "AGE"]
    assert row["NAME"] == "shown"
    assert row["PHASE"] == "Succeeded"
    assert row["MODE"] == "quick"  # the CRD's default, filled in by the server
    assert row["TARGETS"] == '["frontend","backend"]'  # resolved by the operator
    assert row["REASON"] == "Errors after 1.4"
    (policy,) = _table(bed, "rbp")
    assert list(policy) == ["NAME", "READY", "BREACHING", "LAST ROLLBACK", "AGE"]
    assert (policy["NAME"], policy["READY"], policy["LAST ROLLBACK"]) == ("mindmate", "True", "")


def test_the_rollback_category_lists_both_kinds(bed: Bed) -> None:
    bed.apply(manifests.policy())
    bed.apply(manifests.rollback("listed"))

    names = bed.cluster.kubectl("get", "rollback", "-o", "name").stdout.split()

    assert sorted(names) == [
        "rollback.rollback.mindmate.app/listed",
        "rollbackpolicy.rollback.mindmate.app/mindmate",
    ]
