"""The Dockerfile, checked instruction by instruction (Docker cannot build on these machines).

Each claim ties the image to the part of the project that depends on it: the console script
in pyproject, the CLI's `run` command, the ports in the operator's settings and the chart's
values, and the PostgreSQL server version the restore tests run against.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import pytest
import yaml

from rollback_operator import cli
from rollback_operator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TESTED_PG_SERVER_MAJOR = 15  # the server of sandbox/services/postgres.py (Debian 12's)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form ENTRYPOINT, CMD or HEALTHCHECK (after its CMD)."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text.partition(" CMD ")[2] if not text.startswith("CMD ") else text[4:]
        found = json.loads(text)
        assert isinstance(found, list), text
        assert all(isinstance(x, str) for x in found), text
        return found


def parse(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The instructions of each build stage, each starting with its FROM."""
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found.append([])
        assert found, f"{instruction.keyword} before the first FROM"
        found[-1].append(instruction)
    return found


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse((ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def final(dockerfile: list[Instruction]) -> list[Instruction]:
    return stages(dockerfile)[-1]


def _one(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"{len(found)} {keyword} instructions in the final stage"
    return found[0]


def _runs(stage: list[Instruction]) -> str:
    return " && ".join(i.arguments for i in stage if i.keyword == "RUN")


def test_the_parser_joins_continuations_and_drops_comments() -> None:
    parsed = parse('# c\nFROM a:1 AS b\nRUN x \\\n  && y\n# inside\nCMD ["run"]\n')
    assert parsed == [
        Instruction("FROM", "a:1 AS b"),
        Instruction("RUN", "x && y"),
        Instruction("CMD", '["run"]'),
    ]


def test_the_image_is_built_in_stages_and_the_final_one_gets_only_the_wheels(
    dockerfile: list[Instruction], final: list[Instruction]
) -> None:
    all_stages = stages(dockerfile)
    assert len(all_stages) >= 2
    build_names = [s[0].arguments.split()[-1] for s in all_stages[:-1]]
    copies = [i.arguments for i in final if i.keyword == "COPY"]
    assert copies
    assert all(c.startswith("--from=") for c in copies), copies
    assert {c.split()[0].removeprefix("--from=") for c in copies} <= set(build_names)


def test_every_base_image_has_a_pinned_tag_that_is_not_latest(
    dockerfile: list[Instruction],
) -> None:
    for stage in stages(dockerfile):
        image = stage[0].arguments.split()[0]
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert tag, image
        assert tag != "latest", image
        assert "@sha256:" in image or re.search(r"\d", tag), f"{image}: tag without a version"


def test_the_final_stage_runs_as_a_numeric_non_root_user(final: list[Instruction]) -> None:
    user = _one(final, "USER").arguments
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), user
    assert int(uid) > 0, user
    assert not gid or int(gid) > 0, user
    values = yaml.safe_load((ROOT / "charts/rollback-operator/values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)  # the chart's default pod


def test_the_container_runs_the_console_script_with_run(final: list[Instruction]) -> None:
    command = _one(final, "ENTRYPOINT").exec_form() + _one(final, "CMD").exec_form()
    assert command == ["rollback-operator", "run"]


def test_the_console_script_exists_and_has_a_run_command() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["rollback-operator"].partition(":")
    assert getattr(import_module(module), function) is cli.main
    assert cli._parser().parse_args(["run"]).command == "run"


def test_the_postgresql_client_can_restore_the_server_we_test_against(
    final: list[Instruction],
) -> None:
    args = {i.arguments.split("=")[0]: i.arguments.split("=")[1] for i in final
            if i.keyword == "ARG" and "=" in i.arguments}  # fmt: skip
    installs = re.findall(
        r"apt-get install [^&]*?postgresql-client-(\$\{?\w+\}?|\d+)", _runs(final)
    )
    assert len(installs) == 1, installs
    major = installs[0].strip("${}")
    major = args.get(major, major)
    assert int(major) >= TESTED_PG_SERVER_MAJOR


def test_packages_install_slim_and_clean_up(final: list[Instruction]) -> None:
    runs = _runs(final)
    for install in re.findall(r"apt-get install[^&]*", runs):
        assert "--no-install-recommends" in install, install
    assert "rm -rf /var/lib/apt/lists/*" in runs
    assert "--no-cache-dir" in runs


def test_the_ports_are_the_health_and_metrics_ports_of_the_settings_and_chart(
    final: list[Instruction],
) -> None:
    exposed = {int(p.split("/")[0]) for i in final if i.keyword == "EXPOSE"
               for p in i.arguments.split()}  # fmt: skip
    fields = Settings.model_fields
    health = int(re.findall(r":(\d+)/healthz$", fields["liveness_endpoint"].default)[0])
    metrics = fields["metrics_port"].default
    values = yaml.safe_load((ROOT / "charts/rollback-operator/values.yaml").read_text())
    assert health == values["health"]["port"] == 8080
    assert metrics == values["metrics"]["port"] == 8090
    assert exposed == {health, metrics}
    check = _one(final, "HEALTHCHECK").exec_form()
    assert check[0] == "python"  # the slim image has no curl after the build
    assert f"http://127.0.0.1:{health}/healthz" in check[-1]


def test_the_build_context_has_what_the_dockerfile_copies(dockerfile: list[Instruction]) -> None:
    for instruction in dockerfile:
        if instruction.keyword != "COPY" or instruction.arguments.startswith("--from="):
            continue
        sources = instruction.arguments.split()[:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
