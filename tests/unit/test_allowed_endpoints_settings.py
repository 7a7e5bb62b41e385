"""`--allow-endpoint` and `ROLLBACK_OPERATOR_ALLOWED_ENDPOINTS` reach the settings.

Claims: the flag repeats, the environment variable is comma-separated, the flag wins over the
environment, and a prefix that is not an http(s) URL with a host, or carries user info, stops
the command with an error naming it.
"""

from __future__ import annotations

import pytest

from rollback_operator import cli
from rollback_operator.cli import _parser, settings_from


def test_the_flag_repeats() -> None:
    args = ["run", "--allow-endpoint", "http://127.0.0.1", "--allow-endpoint", "https://p.corp/x"]

    assert settings_from(_parser().parse_args(args)).allowed_endpoints == [
        "http://127.0.0.1",
        "https://p.corp/x",
    ]


def test_the_environment_is_comma_separated_and_the_flag_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROLLBACK_OPERATOR_ALLOWED_ENDPOINTS", "https://a.corp, http://[::1]")

    assert settings_from(_parser().parse_args(["run"])).allowed_endpoints == [
        "https://a.corp",
        "http://[::1]",
    ]
    flagged = _parser().parse_args(["run", "--allow-endpoint", "https://b.corp"])
    assert settings_from(flagged).allowed_endpoints == ["https://b.corp"]


def test_without_either_only_the_official_apis_are_allowed() -> None:
    assert settings_from(_parser().parse_args(["run"])).allowed_endpoints == []


@pytest.mark.parametrize("prefix", ["api.corp", "ftp://files.corp", "https://user@p.corp"])
def test_a_bad_prefix_stops_the_command_naming_it(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", "--allow-endpoint", prefix]) == 2

    assert prefix in capsys.readouterr().err
