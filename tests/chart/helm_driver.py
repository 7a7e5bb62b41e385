"""Lint or install a chart with Helm's own Go library (helm-sdkpy), for the chart tests.

helm-sdkpy needs Python >= 3.12 and the project runs on 3.11, so the tests run this file with
the interpreter of the venv that `scripts/helm-env.sh` builds, in a subprocess. It imports
nothing from the project. Helm has no client-only `template` in this library: `install`
against the emulated API (release storage in memory) creates the objects and returns the
rendered manifest, which is what the tests check.

    python helm_driver.py lint CHART
    python helm_driver.py install CHART --jobs JOBS.json

JOBS.json is a list of installs, {"kubeconfig", "namespace", "release", "values"} each; they
run in one process because loading Helm's library is most of the cost. Prints one JSON value
on stdout: the lint result, or one result per job, the release Helm returns (with its
"manifest") or {"error": "..."}.
"""

import argparse
import asyncio
import json
import os
import sys
from typing import Any

# Keep releases in memory: the emulator cannot store the protobuf release Secret. Helm's Go
# runtime reads the environment the process started with, so set it by starting over.
if os.environ.get("HELM_DRIVER") != "memory":
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "HELM_DRIVER": "memory"})

import helm_sdkpy  # type: ignore[import-not-found]  # only in the Python 3.12 helm venv


def lint(chart: str) -> dict[str, Any]:
    result: dict[str, Any] = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(chart))
    return result


def install(chart: str, job: dict[str, Any]) -> dict[str, Any]:
    config = helm_sdkpy.Configuration(namespace=job["namespace"], kubeconfig=job["kubeconfig"])
    try:
        release: dict[str, Any] = asyncio.run(
            helm_sdkpy.Install(config).run(
                job["release"], chart, values=job["values"] or None, wait=False
            )
        )
    except helm_sdkpy.HelmError as error:
        return {"error": str(error)}
    return release


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["lint", "install"])
    parser.add_argument("chart")
    parser.add_argument("--jobs", help="a JSON file: the list of installs")
    args = parser.parse_args()
    if args.command == "lint":
        json.dump(lint(args.chart), sys.stdout)
        return 0
    with open(args.jobs, encoding="utf-8") as jobs:
        json.dump([install(args.chart, job) for job in json.load(jobs)], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
