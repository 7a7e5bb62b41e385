"""Hypothesis strategies for valid Rollback and RollbackPolicy manifests, built field by field.

Why this module exists: the fuzz suite needs specs that the models and the CRD schema must both
accept, covering every field of `api/rollback.py` and `api/policy.py` with its optional parts
left out or filled in, and with the cross-field rules kept (pins only for chosen targets, quick
mode with frontend and backend only, warning before critical, rules need metrics, unique rule
names, database and storage need an object store). `tests.fuzz.faults` breaks them one fault
at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from rollback_operator.api import API_VERSION

Json = dict[str, Any]
ALL = ("frontend", "backend", "database", "storage")
QUICK = ("frontend", "backend")
UNITS = ("ms", "s", "m", "h", "d")

dns_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
words = st.text(min_size=1, max_size=16)
keys = st.from_regex(r"[A-Za-z0-9._-]{1,16}", fullmatch=True)
urls = st.builds(
    "{}://{}{}".format,
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z0-9][a-z0-9.-]{0,15}(:[0-9]{2,5})?", fullmatch=True),
    st.from_regex(r"(/[A-Za-z0-9_.-]{0,8}){0,2}", fullmatch=True),
)
numbers = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def durations(*, zero: bool = False) -> st.SearchStrategy[str]:
    """`5m`, `1h30m`, `250ms`; `0s` too when `zero`."""
    part = st.builds("{}{}".format, st.integers(1, 999), st.sampled_from(UNITS))
    positive = st.lists(part, min_size=1, max_size=3).map("".join)
    return st.one_of(st.just("0s"), positive) if zero else positive


def secret_refs() -> st.SearchStrategy[Json]:
    return st.fixed_dictionaries({"name": dns_names, "key": keys})


def _optional(required: Json, optional: Json) -> st.SearchStrategy[Json]:
    return st.fixed_dictionaries(required, optional=optional)


def rfc3339() -> st.SearchStrategy[str]:
    """An RFC 3339 time with `Z` or a numeric offset."""
    offsets = st.integers(-12, 14).map(lambda h: timezone(timedelta(hours=h)))
    zones = st.one_of(st.just(UTC), offsets)
    moments = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=zones)
    return moments.map(lambda d: d.replace(microsecond=0).isoformat().replace("+00:00", "Z"))


# ----- Rollback -----------------------------------------------------------------------------

PINS: dict[str, st.SearchStrategy[Json]] = {
    "frontend": st.fixed_dictionaries({"deploymentId": words}),
    "backend": st.fixed_dictionaries({"deploymentId": words}),
    "database": st.fixed_dictionaries({"backup": words}),
    "storage": st.fixed_dictionaries({"asOf": rfc3339()}),
}


ROLLBACK_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "version": words,
    "reason": st.text(max_size=40),
    "dryRun": st.booleans(),
    "requireApproval": st.booleans(),
}


@st.composite
def rollback_specs(draw: st.DrawFn) -> Json:
    """A valid Rollback spec."""
    spec: Json = {"policyRef": {"name": draw(dns_names)}}
    mode = draw(st.sampled_from([None, "quick", "full"]))
    if mode is not None:
        spec["mode"] = mode
    allowed = QUICK if mode in (None, "quick") else ALL
    chosen = list(allowed)
    if draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(allowed), min_size=1, unique=True))
        spec["targets"] = chosen
    pinned = draw(st.lists(st.sampled_from(chosen), unique=True))
    if bool(pinned) or draw(st.booleans()):
        spec["to"] = {t: draw(PINS[t]) for t in pinned}
    for field, values in ROLLBACK_OPTIONAL.items():
        if draw(st.booleans()):
            spec[field] = draw(values)
    return spec


# ----- RollbackPolicy -----------------------------------------------------------------------

TARGETS: dict[str, st.SearchStrategy[Json]] = {
    "frontend": st.fixed_dictionaries({"vercel": _optional(
        {"projectId": words, "tokenSecretRef": secret_refs()},
        {"teamId": words, "apiUrl": urls},
    )}),
    "backend": st.fixed_dictionaries({"railway": _optional(
        {"projectId": words, "environmentId": words, "serviceId": words,
         "tokenSecretRef": secret_refs()},
        {"tokenType": st.sampled_from(["account", "project"]), "apiUrl": urls},
    )}),
    "database": st.fixed_dictionaries({"postgres": _optional(
        {"urlSecretRef": secret_refs(),
         "backups": _optional({"bucket": dns_names}, {"prefix": st.text(max_size=12)})},
        {"safetyBackup": st.booleans()},
    )}),
    "storage": st.fixed_dictionaries({"s3": _optional(
        {"bucket": dns_names},
        {"prefix": st.text(max_size=12),
         "backups": _optional({"bucket": dns_names}, {"prefix": st.text(max_size=12)})},
    )}),
}  # fmt: skip

OBJECT_STORE = _optional(
    {},
    {"region": words, "endpointUrl": urls,
     "credentialsSecretRef": _optional({"name": dns_names},
                                       {"accessKeyIdKey": keys, "secretAccessKeyKey": keys})},
)  # fmt: skip
METRICS = st.fixed_dictionaries(
    {"prometheus": _optional({"url": urls}, {"authSecretRef": secret_refs()})}
)
read_queries = st.builds(
    lambda verb, rest, end: f"{verb} {rest}{end}",
    st.sampled_from(["SELECT", "select", "WITH x AS (SELECT 1)", "VALUES", "TABLE"]),
    words.filter(lambda w: ";" not in w),
    st.sampled_from(["", ";", " ;\n"]),
)  # one read statement, as the schema and the models require
VERIFICATION_LISTS: dict[str, Callable[[str], st.SearchStrategy[Json]]] = {
    "healthChecks": (
        lambda name: _optional({"name": st.just(name), "url": urls},
                               {"expectStatus": st.integers(100, 599)})
    ),
    "sqlChecks": (
        lambda name: st.fixed_dictionaries({"name": st.just(name), "query": read_queries,
                                            "expect": _optional({}, {"min": numbers,
                                                                     "max": numbers,
                                                                     "equals": words})})
    ),
}  # fmt: skip
NOTIFICATIONS = _optional(
    {},
    {"slack": st.fixed_dictionaries({"webhookSecretRef": secret_refs()}),
     "statuspage": _optional({"pageId": words, "apiKeySecretRef": secret_refs()},
                             {"componentIds": st.lists(words, unique=True, max_size=3),
                              "apiUrl": urls}),
     "pagerduty": _optional({"routingKeySecretRef": secret_refs()}, {"apiUrl": urls})},
)  # fmt: skip
CONTACTS = st.lists(  # the CRD keys contacts by name
    _optional({"role": words, "name": words}, {"email": words, "phone": words}),
    max_size=2,
    unique_by=lambda contact: str(contact["name"]),
)


POLICY_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "suspend": st.booleans(),
    "evaluationInterval": durations(),
    "notifications": NOTIFICATIONS,
    "contacts": CONTACTS,
}


@st.composite
def thresholds(draw: st.DrawFn) -> Json:
    """`warning` and/or `critical` of one rule, both pointing the same way, warning first."""
    side = draw(st.sampled_from(["above", "below"]))
    first, second = sorted([draw(numbers), draw(numbers)])
    warn, crit = (first, second) if side == "above" else (second, first)
    which = draw(st.sampled_from(["warning", "critical", "both"]))
    out: Json = {}
    if which != "critical":
        out["warning"] = {side: warn}
    if which != "warning":
        out["critical"] = {side: crit}
    return out


@st.composite
def rules(draw: st.DrawFn, name: str, auto_ok: bool) -> Json:
    rule: Json = {"name": name, "query": draw(words), **draw(thresholds())}
    if draw(st.booleans()):
        rule["for"] = draw(durations(zero=True))
    if draw(st.booleans()):
        rule["noData"] = draw(st.sampled_from(["ignore", "breach", "hold"]))
    if draw(st.booleans()):
        rule["autoRollback"] = auto_ok and "critical" in rule and draw(st.booleans())
    return rule


@st.composite
def policy_specs(draw: st.DrawFn) -> Json:
    """A valid RollbackPolicy spec."""
    defined = draw(st.lists(st.sampled_from(ALL), unique=True))
    spec: Json = {"targets": {t: draw(TARGETS[t]) for t in defined}}
    if bool({"database", "storage"} & set(defined)) or draw(st.booleans()):
        spec["objectStore"] = draw(OBJECT_STORE)
    auto: Json = {}
    if draw(st.booleans()):
        mode = draw(st.sampled_from(["quick", "full"]))
        auto_targets = draw(st.lists(st.sampled_from(QUICK if mode == "quick" else ALL),
                                     min_size=1, unique=True))  # fmt: skip
        auto = {"mode": mode, "targets": auto_targets}
        if draw(st.booleans()):
            auto["cooldown"] = draw(durations())
        if draw(st.booleans()):
            auto["maxRollbacks"] = draw(_optional({}, {"count": st.integers(1, 50),
                                                       "window": durations()}))  # fmt: skip
        spec["automaticRollback"] = auto
    auto_ok = set(auto.get("targets", QUICK)) <= set(defined)
    names = draw(st.lists(dns_names, unique=True, max_size=3))
    if names:
        spec["rules"] = [draw(rules(name, auto_ok)) for name in names]
    if bool(names) or draw(st.booleans()):
        spec["metrics"] = draw(METRICS)
    for field, values in POLICY_OPTIONAL.items():
        if draw(st.booleans()):
            spec[field] = draw(values)
    if draw(st.booleans()):
        spec["verification"] = draw(verifications())
    return spec


@st.composite
def verifications(draw: st.DrawFn) -> Json:
    out: Json = {}
    for field, item in VERIFICATION_LISTS.items():
        names = draw(st.lists(dns_names, unique=True, max_size=2))
        if bool(names) or draw(st.booleans()):
            out[field] = [draw(item(name)) for name in names]
    if draw(st.booleans()):
        out["storage"] = draw(st.booleans())
    if draw(st.booleans()):
        out["cache"] = {"urlSecretRef": draw(secret_refs())}
    if draw(st.booleans()):
        out["window"] = draw(durations(zero=True))
    return out


def manifest(kind: str, spec: Json, name: str = "fuzz") -> Json:
    """`spec` wrapped as a whole object of `kind`."""
    return {"apiVersion": API_VERSION, "kind": kind,
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}  # fmt: skip


def manifests() -> st.SearchStrategy[Json]:
    """A valid Rollback or RollbackPolicy manifest."""
    return st.one_of(
        rollback_specs().map(lambda s: manifest("Rollback", s)),
        policy_specs().map(lambda s: manifest("RollbackPolicy", s)),
    )
