"""One well-chosen fault at a time: a valid spec from `tests.fuzz.specs`, broken in one place.

Why this module exists: a random invalid spec says little; a valid spec with exactly one known
fault says which field the refusal must name and which layer should refuse it: the CRD schema
(as an API server would), the operator's models, or both. Each `Fault` finds where it can apply
in a given spec, breaks it there, and returns the field path. `judge` asks both layers.

Faults marked schema-only would be real differences between the models and the CRD (the models
accepting what the schema refuses); there are none: the fuzzing found five (lax numbers and
dates, list uniqueness) and the models were made as strict as the schema.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st
from pydantic import ValidationError

from rollback_operator.api.crd import rollback_crd, rollback_policy_crd
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import Rollback
from rollback_operator.api.validation import describe
from tests.fuzz import specs
from tests.schema import schema_errors

Json = dict[str, Any]
Path = tuple[str | int, ...]
BOTH, SCHEMA, MODEL = frozenset({"schema", "model"}), frozenset({"schema"}), frozenset({"model"})


@dataclass(frozen=True)
class Case:
    """An invalid manifest, the fault that made it, the field to name and the expected layers."""

    manifest: Json
    fault: str
    field: str
    layers: frozenset[str]


@dataclass(frozen=True)
class Verdict:
    """What each layer said: schema errors (empty: accepted), model error (None: accepted)."""

    schema: list[str]
    model: str | None

    @property
    def layers(self) -> frozenset[str]:
        return frozenset({"schema"} if self.schema else set()) | (
            {"model"} if self.model is not None else set()
        )


def judge(manifest: Json) -> Verdict:
    """Both layers' verdicts. Anything but a ValidationError from the models propagates."""
    model = Rollback if manifest["kind"] == "Rollback" else RollbackPolicy
    try:
        model.model_validate(manifest)
        error = None
    except ValidationError as refused:
        error = describe(refused)
    return Verdict(schema_errors(manifest), error)


def field_of(path: Path) -> str:
    """("spec", "rules", 0, "for") -> "spec.rules[0].for"."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def names(text: str, field: str) -> bool:
    """Whether an error text names `field`: the path itself, or its parent and its key."""
    dotted = field.replace("[", ".").replace("]", "")
    if field in text or dotted in text:
        return True
    parent, _, leaf = dotted.rpartition(".")
    return f"{parent}:" in text and f"'{leaf}'" in text


# ----- walking a spec ---------------------------------------------------------------------


def walk(node: Any, path: Path = ("spec",)) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) inside `node`, the node itself first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def _parent(spec: Json, path: Path) -> Any:
    node: Any = {"spec": spec}
    for part in path[:-1]:
        node = node[part]
    return node


def put(spec: Json, path: Path, value: Any) -> None:
    _parent(spec, path)[path[-1]] = value


def drop(spec: Json, path: Path) -> None:
    del _parent(spec, path)[path[-1]]


def get(spec: Json, path: Path) -> Any:
    return _parent(spec, path)[path[-1]]


def keyed(*keys: str) -> Callable[[Json], list[Path]]:
    """Finder: every path whose last key is one of `keys`."""
    return lambda spec: [p for p, _ in walk(spec) if p[-1] in keys]


def objects(spec: Json) -> list[Path]:
    """Every object in the spec (each is a model that refuses unknown fields)."""
    return [p for p, v in walk(spec) if isinstance(v, dict)]


def schema_node(kind: str, path: Path) -> Json:
    """The CRD schema node of `path` in a manifest of `kind`."""
    crd = rollback_crd() if kind == "Rollback" else rollback_policy_crd()
    node: Json = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in path:
        node = node["items"] if isinstance(part, int) else node["properties"][part]
    return node


def flags(*keys: str) -> Callable[[Json], list[Path]]:
    """Finder: every boolean under one of `keys`."""
    return lambda spec: [p for p, v in walk(spec) if p[-1] in keys and isinstance(v, bool)]


Finder = Callable[[Json], list[Path]]
Breaker = Callable[[st.DrawFn, Json, Path], Path]


@dataclass(frozen=True)
class Fault:
    """A way to break a valid spec of `kind` in one place."""

    name: str
    kind: str
    layers: frozenset[str]
    find: Finder
    apply: Breaker
    layers_at: Callable[[str, Path], frozenset[str]] | None = None
    """Expected layers that depend on where the fault went (else `layers`)."""


def replace_with(values: st.SearchStrategy[Any]) -> Breaker:
    def apply(draw: st.DrawFn, spec: Json, path: Path) -> Path:
        put(spec, path, draw(values))
        return path

    return apply


def remove(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    drop(spec, path)
    return path


def add_unknown(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    key = draw(st.sampled_from(["bogus", "rollbackEverything", "extraField", "Mode"]))
    get(spec, path)[key] = draw(st.one_of(st.booleans(), st.integers(), specs.words))
    return (*path, key)


def duplicate_item(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    items = get(spec, path)
    items.append(copy.deepcopy(draw(st.sampled_from(items))))
    return path


NOT_STRINGS = st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=2),
                        st.fixed_dictionaries({"value": st.integers()}))  # fmt: skip
NOT_BOOLS: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(["yes", "true", "no", "1"]), st.integers(0, 1), st.just([])
)
BAD_DURATIONS = st.sampled_from(
    ["5 minutes", "1.5h", "30", "-5m", "", "5M", "1w", "m5", "5m ", "P1D", "1h-30m"]
)
ZERO_DURATIONS = st.sampled_from(["0s", "0m", "0h0m", "0ms", "00s"])
BAD_NAMES = st.sampled_from(["Mind_Mate", "-api", "api-", "API", "a b", "", "x" * 254, "a/b"])
BAD_URLS = st.sampled_from(["prometheus:9090", "ftp://x", "https://", "//x", "http://a b", ""])
NOT_NUMBERS = st.one_of(st.sampled_from(["high", "", "5%"]), st.lists(st.integers(), max_size=2))
DURATION_KEYS = ("evaluationInterval", "for", "cooldown", "window")
POSITIVE_DURATION_PATHS = (("automaticRollback", "cooldown"), ("maxRollbacks", "window"))


def _durations(spec: Json) -> list[Path]:
    return [p for p, v in walk(spec) if p[-1] in DURATION_KEYS and isinstance(v, str)]


def _positive_durations(spec: Json) -> list[Path]:
    found = [p for p in _durations(spec) if tuple(p[-2:]) in POSITIVE_DURATION_PATHS]
    return found + [p for p in _durations(spec) if p == ("spec", "evaluationInterval")]


def _thresholds(spec: Json) -> list[Path]:
    return [p for p, v in walk(spec) if len(p) == 4 and p[-1] in ("warning", "critical")]


def _rules(spec: Json) -> list[Path]:
    return [("spec", "rules", i) for i in range(len(spec.get("rules", [])))]


def _secret_refs(spec: Json) -> list[Path]:
    return [p for p, v in walk(spec) if str(p[-1]).endswith("SecretRef") and isinstance(v, dict)]


# ----- Rollback faults ----------------------------------------------------------------------


def _chosen(spec: Json) -> list[str]:
    mode = spec.get("mode", "quick")
    return list(spec.get("targets") or (specs.QUICK if mode == "quick" else specs.ALL))


def _unchosen_pin(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    free = [t for t in specs.ALL if t not in _chosen(spec)]
    target = draw(st.sampled_from(free))
    spec.setdefault("to", {})[target] = draw(specs.PINS[target])
    return ("spec", "to")


def _quick_full_target(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    if draw(st.booleans()):
        spec["mode"] = "quick"
    full_only = draw(st.sampled_from(["database", "storage"]))
    spec["targets"] = [*spec.get("targets", ["frontend"]), full_only]
    spec.pop("to", None)
    return ("spec", "targets")


def _add_target(values: st.SearchStrategy[str]) -> Breaker:
    def apply(draw: st.DrawFn, spec: Json, path: Path) -> Path:
        spec["targets"] = [*_chosen(spec), draw(values)]
        return ("spec", "targets")

    return apply


def _has_targets(spec: Json) -> list[Path]:
    return [("spec", "targets")]


ROLLBACK_FAULTS = [
    Fault("mode-unknown", "Rollback", BOTH, lambda s: [("spec", "mode")],
          replace_with(st.sampled_from(["fast", "QUICK", "partial", ""]))),
    Fault("mode-wrong-type", "Rollback", BOTH, lambda s: [("spec", "mode")],
          replace_with(NOT_STRINGS)),
    Fault("targets-unknown", "Rollback", BOTH, _has_targets,
          _add_target(st.sampled_from(["cdn", "dns", "Frontend", "cache", ""]))),
    Fault("targets-repeated", "Rollback", BOTH,
          lambda s: [("spec", "targets")] if s.get("targets") else [], duplicate_item),
    Fault("targets-empty", "Rollback", BOTH, _has_targets, replace_with(st.just([]))),
    Fault("targets-not-a-list", "Rollback", BOTH, _has_targets,
          replace_with(st.one_of(st.sampled_from(specs.ALL), st.integers()))),
    Fault("quick-mode-full-target", "Rollback", MODEL,
          lambda s: [] if s.get("mode") == "full" else [("spec", "targets")], _quick_full_target),
    Fault("pin-for-unchosen-target", "Rollback", MODEL,
          lambda s: [("spec", "to")] if len(_chosen(s)) < 4 else [], _unchosen_pin),
    Fault("policy-ref-missing", "Rollback", BOTH, keyed("policyRef"), remove),
    Fault("policy-ref-bad-name", "Rollback", BOTH,
          lambda s: [("spec", "policyRef", "name")], replace_with(BAD_NAMES)),
    Fault("flag-not-a-bool", "Rollback", BOTH,
          lambda s: [("spec", "dryRun"), ("spec", "requireApproval")], replace_with(NOT_BOOLS)),
    Fault("text-wrong-type", "Rollback", BOTH,
          lambda s: [("spec", "reason"), ("spec", "version")], replace_with(NOT_STRINGS)),
    Fault("pin-id-missing", "Rollback", BOTH, keyed("deploymentId", "backup", "asOf"), remove),
    Fault("pin-id-wrong-type", "Rollback", BOTH, keyed("deploymentId", "backup"),
          replace_with(NOT_STRINGS)),
    Fault("pin-id-empty", "Rollback", BOTH, keyed("deploymentId", "backup"),
          replace_with(st.just(""))),
    Fault("pin-time-not-a-time", "Rollback", BOTH, keyed("asOf"),
          replace_with(st.sampled_from(["yesterday", "2024-13-01T00:00:00Z", "now", ""]))),
    Fault("pin-time-lax", "Rollback", BOTH, keyed("asOf"),
          replace_with(st.sampled_from([1704067200, "2024-01-01", "1704067200"]))),
    Fault("unknown-field", "Rollback", BOTH, objects, add_unknown),
]  # fmt: skip


# ----- RollbackPolicy faults ----------------------------------------------------------------


def _threshold_both(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    put(spec, path, {"above": draw(specs.numbers), "below": draw(specs.numbers)})
    return path


def _as_text(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    put(spec, path, str(get(spec, path)))  # the same number, quoted
    return path


def _strip_thresholds(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    rule = get(spec, path)
    rule.pop("warning", None), rule.pop("critical", None), rule.pop("autoRollback", None)
    return path


def _warning_past_critical(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    rule, side = get(spec, path), draw(st.sampled_from(["above", "below"]))
    low, high = sorted(draw(st.lists(specs.numbers, min_size=2, max_size=2, unique=True)))
    rule["warning"], rule["critical"] = (
        ({side: high}, {side: low}) if side == "above" else ({side: low}, {side: high})
    )
    return path


def _opposite_ways(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    rule = get(spec, path)
    rule["warning"] = {"above": draw(specs.numbers)}
    rule["critical"] = {"below": draw(specs.numbers)}
    return path


def _auto_without_critical(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    rule = get(spec, path)
    rule.pop("critical", None)
    rule["warning"], rule["autoRollback"] = {"above": draw(specs.numbers)}, True
    return path


def _rule_names_repeated(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    rules = spec["rules"]
    rules.append({**copy.deepcopy(draw(st.sampled_from(rules))), "autoRollback": False})
    return ("spec", "rules")


def _no_metrics(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    spec.pop("metrics", None)
    return ("spec", "metrics")


def _no_object_store(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    spec.pop("objectStore", None)
    return ("spec", "objectStore")


def _auto_target_undefined(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    auto = spec.setdefault("automaticRollback", {"mode": "quick", "targets": ["frontend"]})
    target = draw(st.sampled_from(auto["targets"]))
    spec["targets"].pop(target, None)
    if target in ("database", "storage"):
        spec.setdefault("objectStore", {})
    spec.setdefault("metrics", {"prometheus": {"url": "http://prometheus:9090"}})
    rule = {"name": "fuzz-auto", "query": "up", "critical": {"above": 1.0}, "autoRollback": True}
    spec["rules"] = [r for r in spec.get("rules", []) if r["name"] != "fuzz-auto"] + [rule]
    return ("spec", "automaticRollback", "targets")


def _ref_missing(key: str) -> Breaker:
    def apply(draw: st.DrawFn, spec: Json, path: Path) -> Path:
        get(spec, path).pop(key)
        return (*path, key)

    return apply


def _ref_bad_name(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    get(spec, path)["name"] = draw(BAD_NAMES)
    return (*path, "name")


def _with_rules(spec: Json) -> list[Path]:
    return [("spec",)] if spec.get("rules") else []


def _with_store_targets(spec: Json) -> list[Path]:
    return [("spec",)] if {"database", "storage"} & set(spec["targets"]) else []


def _listed(key: str) -> Finder:
    """Finder: every non-empty list under `key`."""
    return lambda s: [p for p, v in walk(s) if p[-1] == key and isinstance(v, list) and v]


def _append_unknown_target(draw: st.DrawFn, spec: Json, path: Path) -> Path:
    get(spec, path).append(draw(st.sampled_from(["cdn", "dns", "db", "Frontend"])))
    return path


def _keyed_refs(spec: Json) -> list[Path]:
    return [p for p in _secret_refs(spec) if "key" in get(spec, p)]


def _postgres_backups(spec: Json) -> list[Path]:
    return [p for p in keyed("backups")(spec) if "postgres" in p]


POLICY_FAULTS = [
    Fault("duration-malformed", "RollbackPolicy", BOTH, _durations, replace_with(BAD_DURATIONS)),
    Fault("duration-wrong-type", "RollbackPolicy", BOTH, _durations,
          replace_with(st.one_of(st.integers(0, 600), st.floats(0, 9)))),
    Fault("duration-zero", "RollbackPolicy", MODEL, _positive_durations,
          replace_with(ZERO_DURATIONS)),
    Fault("threshold-above-and-below", "RollbackPolicy", BOTH, _thresholds, _threshold_both),
    Fault("threshold-neither", "RollbackPolicy", BOTH, _thresholds, replace_with(st.just({}))),
    Fault("threshold-not-a-number", "RollbackPolicy", BOTH,
          lambda s: [(*p, k) for p in _thresholds(s) for k in get(s, p)],
          replace_with(NOT_NUMBERS)),
    Fault("threshold-number-as-text", "RollbackPolicy", BOTH,
          lambda s: [(*p, k) for p in _thresholds(s) for k in get(s, p)], _as_text),
    Fault("rule-without-thresholds", "RollbackPolicy", BOTH, _rules, _strip_thresholds),
    Fault("warning-past-critical", "RollbackPolicy", MODEL, _rules, _warning_past_critical),
    Fault("warning-critical-opposite", "RollbackPolicy", MODEL, _rules, _opposite_ways),
    Fault("auto-rollback-without-critical", "RollbackPolicy", MODEL, _rules,
          _auto_without_critical),
    Fault("rule-names-repeated", "RollbackPolicy", BOTH, _with_rules, _rule_names_repeated),
    Fault("rules-without-metrics", "RollbackPolicy", MODEL, _with_rules, _no_metrics),
    Fault("auto-target-not-defined", "RollbackPolicy", MODEL,
          lambda s: [("spec",)] if s["targets"] else [], _auto_target_undefined),
    Fault("store-targets-without-object-store", "RollbackPolicy", MODEL, _with_store_targets,
          _no_object_store),
    Fault("secret-ref-missing-key", "RollbackPolicy", BOTH, _keyed_refs, _ref_missing("key")),
    Fault("secret-ref-missing-name", "RollbackPolicy", BOTH, _secret_refs, _ref_missing("name")),
    Fault("secret-ref-bad-name", "RollbackPolicy", BOTH, _secret_refs, _ref_bad_name),
    Fault("flag-not-a-bool", "RollbackPolicy", BOTH,
          flags("suspend", "safetyBackup", "autoRollback", "storage"), replace_with(NOT_BOOLS)),
    Fault("url-not-a-url", "RollbackPolicy", BOTH, keyed("apiUrl", "url", "endpointUrl"),
          replace_with(BAD_URLS)),
    Fault("enum-unknown", "RollbackPolicy", BOTH, keyed("tokenType", "noData", "mode"),
          replace_with(st.sampled_from(["team", "panic", "fast", "", "Account"]))),
    Fault("count-out-of-range", "RollbackPolicy", BOTH, keyed("count"),
          replace_with(st.integers(-5, 0))),
    Fault("status-out-of-range", "RollbackPolicy", BOTH, keyed("expectStatus"),
          replace_with(st.one_of(st.integers(-1, 99), st.integers(600, 1000)))),
    Fault("integer-wrong-type", "RollbackPolicy", BOTH, keyed("count", "expectStatus"),
          replace_with(st.sampled_from(["3", 2.5, True, "200"]))),
    Fault("auto-targets-unknown", "RollbackPolicy", BOTH, _listed("targets"),
          _append_unknown_target),
    Fault("auto-targets-empty", "RollbackPolicy", BOTH, _listed("targets"),
          replace_with(st.just([]))),
    Fault("auto-targets-repeated", "RollbackPolicy", BOTH, _listed("targets"), duplicate_item),
    Fault("check-names-repeated", "RollbackPolicy", BOTH,
          lambda s: _listed("healthChecks")(s) + _listed("sqlChecks")(s), duplicate_item),
    Fault("component-ids-repeated", "RollbackPolicy", BOTH, _listed("componentIds"),
          duplicate_item),
    Fault("required-missing", "RollbackPolicy", BOTH,
          keyed("projectId", "environmentId", "serviceId", "bucket", "query",
                "pageId", "role", "expect", "prometheus", "vercel", "railway", "postgres", "s3"),
          remove),
    Fault("database-backups-missing", "RollbackPolicy", BOTH, _postgres_backups, remove),
    Fault("required-empty", "RollbackPolicy", BOTH,
          keyed("projectId", "environmentId", "serviceId", "query", "pageId", "region", "role"),
          replace_with(st.just(""))),
    Fault("text-wrong-type", "RollbackPolicy", BOTH,
          keyed("projectId", "teamId", "query", "prefix", "region", "email", "equals"),
          replace_with(NOT_STRINGS)),
    Fault("list-not-a-list", "RollbackPolicy", BOTH,
          keyed("rules", "contacts", "healthChecks", "sqlChecks", "componentIds"),
          replace_with(st.one_of(st.just({"a": 1}), specs.words))),
    Fault("unknown-field", "RollbackPolicy", BOTH, objects, add_unknown),
]  # fmt: skip

FAULTS = {"Rollback": ROLLBACK_FAULTS, "RollbackPolicy": POLICY_FAULTS}


@st.composite
def invalid_cases(draw: st.DrawFn, kind: str, fault: Fault) -> Case:
    """A valid manifest of `kind` broken by `fault` (specs it cannot break are rejected)."""
    spec = draw(specs.rollback_specs() if kind == "Rollback" else specs.policy_specs())
    places = fault.find(spec)
    assume(places)
    path = draw(st.sampled_from(places))
    broken = copy.deepcopy(spec)
    field = fault.apply(draw, broken, path)
    layers = fault.layers_at(kind, field) if fault.layers_at else fault.layers
    return Case(specs.manifest(kind, broken), fault.name, field_of(field), layers)


def canonical(manifest: Json) -> str:
    """One string per distinct manifest."""
    return json.dumps(manifest, sort_keys=True, default=str)
