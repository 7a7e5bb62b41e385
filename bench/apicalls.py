"""The writes the operator made, counted by the real API server itself.

Why this module exists: on a shared machine a benchmark's times move with the load, but the
number of requests a rollback costs does not, and those requests are what the times are made
of (every status patch is a round trip the rollback waits for). kube-apiserver counts every
request it serves (`apiserver_request_total` on `/metrics`, by verb, resource and
subresource); a benchmark reads the counters before and after, and prints the writes per
rollback. Only the operator writes these kinds in a benchmark's namespace: the benchmark
itself creates Rollbacks and policies and reads, nothing else. The emulator has no counters.

    before = apicalls.read(api)
    ...
    print(apicalls.per_rollback(before, apicalls.read(api), rollbacks))
"""

from __future__ import annotations

import re
from collections import Counter

import httpx

Key = tuple[str, str, str]  # verb, resource, subresource
WRITES: dict[Key, str] = {
    ("PATCH", "rollbacks", "status"): "status patches",
    ("POST", "events", ""): "Events",
    ("PATCH", "rollbacks", ""): "kopf patches",
    ("POST", "configmaps", ""): "report ConfigMaps",
}
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def read(api: httpx.Client) -> Counter[Key]:
    """Every request the server has served so far, by (verb, resource, subresource)."""
    counts: Counter[Key] = Counter()
    for line in api.get("/metrics").raise_for_status().text.splitlines():
        found = _SAMPLE.match(line)
        if found is None:
            continue
        labels = dict(_LABEL.findall(found["labels"]))
        key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
        counts[key] += int(float(found["value"]))
    return counts


def per_rollback(before: Counter[Key], after: Counter[Key], rollbacks: int) -> str:
    """One line: the operator's writes per rollback between two readings."""
    parts = [f"{(after[key] - before[key]) / rollbacks:.1f} {name}" for key, name in WRITES.items()]
    return "API writes per rollback: " + ", ".join(parts)
