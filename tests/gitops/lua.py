"""Runs an Argo CD health or action script on an object, the way Argo CD runs it.

Argo CD runs resource customizations in gopher-lua, a Lua 5.1, with only the base, table,
string and math libraries and a safe part of `os`, the object as the global `obj` (JSON objects
and arrays as tables, arrays from index 1), and reads the table the script returns. Here the
same script runs in Lua 5.1 (the PyPI package lupa) with the same globals.
"""

from __future__ import annotations

from typing import Any

from lupa import lua51  # type: ignore[import-untyped]

_SANDBOX = """
io, require, dofile, loadfile, load, loadstring, module, package, debug = nil
local safe = {time = os.time, date = os.date, clock = os.clock, difftime = os.difftime}
os = safe
"""


def run(script: str, obj: dict[str, Any]) -> Any:
    """The value `script` returns for `obj`, as Python (tables with keys 1..n as lists)."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=False)
    runtime.execute(_SANDBOX)
    runtime.globals().obj = _to_lua(runtime, obj)
    return _to_python(runtime.execute(script))


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def _to_python(value: Any) -> Any:
    if lua51.lua_type(value) != "table":
        return value
    items = {k: _to_python(v) for k, v in value.items()}
    if items and set(items) == set(range(1, len(items) + 1)):
        return [items[i] for i in range(1, len(items) + 1)]
    return items
