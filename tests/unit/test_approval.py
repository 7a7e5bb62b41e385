"""Who may approve: anyone but the requester, compared as the operator reads the annotations."""

from __future__ import annotations

import pytest

from rollback_operator.reconcile.approval import refusal


@pytest.mark.parametrize(
    ("approved_by", "requested_by"),
    [("alice", "alice"), (" alice", "alice\n"), ("system:serviceaccount:ci:deployer",
                                                  "system:serviceaccount:ci:deployer")],
)  # fmt: skip
def test_an_approval_naming_the_requester_is_refused_and_names_them(
    approved_by: str, requested_by: str
) -> None:
    said = refusal(approved_by, requested_by)
    assert said is not None
    assert said.startswith(f"{approved_by.strip()} requested this rollback and cannot approve")


@pytest.mark.parametrize(
    ("approved_by", "requested_by"),
    [("bob", "alice"), ("Alice", "alice"), ("alice", None), ("alice", ""), (None, "alice"),
     ("", "")],
)  # fmt: skip
def test_another_persons_approval_or_none_yet_is_not_refused(
    approved_by: str | None, requested_by: str | None
) -> None:
    assert refusal(approved_by, requested_by) is None
