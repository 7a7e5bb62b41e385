"""Turn pydantic validation errors into one line that names the field, for conditions and Events."""

from __future__ import annotations

import re

from pydantic import ValidationError

_LEADING_FIELD = re.compile(r"^([A-Za-z][\w.\[\]]*): ")


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe(error: ValidationError, root: str = "") -> str:
    """`spec.rules[1].for: String should match pattern ...; spec.mode: ...`."""
    parts = []
    for item in error.errors():
        loc = _path(tuple(part for part in item["loc"] if "[" not in str(part)))
        path = ".".join(p for p in (root, loc) if p)
        message = str(item["msg"]).removeprefix("Value error, ")
        nested = _LEADING_FIELD.match(message)
        if nested:
            path = f"{path}.{nested.group(1)}" if path else nested.group(1)
            message = message[nested.end() :]
        parts.append(f"{path}: {message}" if path else message)
    return "; ".join(parts)
