"""How the emulator speaks the API server's HTTP dialect, on top of kmock's request parsing.

Kubernetes clients decide what went wrong from the ``reason`` of a ``Status`` object
(client-go's ``IsAlreadyExists`` wants ``AlreadyExists``, kubectl's ``--ignore-not-found``
wants ``NotFound``), so errors must use the API server's reasons, not kmock's prose. The
module also fixes kmock's reading of ``/api/v1/namespaces`` URLs and holds the small
formatting rules shared by the emulator: timestamps, apiVersions and resource names.
"""

import copy
import datetime
from typing import Any

import kmock
from kmock._internal import parsing


def error(code: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    """An exception that kmock renders as a Kubernetes ``Status`` object."""
    return kmock.KubernetesError(code, reason, message, details or {"causes": []})


def not_found(resource: kmock.resource, name: str) -> kmock.KubernetesError:
    return error(404, "NotFound", f'{kind_name(resource)} "{name}" not found', name=name)


def already_exists(resource: kmock.resource, name: str) -> kmock.KubernetesError:
    message = f'{kind_name(resource)} "{name}" already exists'
    return error(409, "AlreadyExists", message, name=name, kind=resource.plural)


def conflict(resource: kmock.resource, name: str) -> kmock.KubernetesError:
    message = (
        f'Operation cannot be fulfilled on {kind_name(resource)} "{name}": the object has been'
        " modified; please apply your changes to the latest version and try again"
    )
    return error(409, "Conflict", message, name=name, kind=resource.plural)


def header(request: kmock.Request, name: str) -> str:
    """A request header, case-insensitively (kmock keeps them in a plain dict)."""
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), "")


def body(request: kmock.Request) -> dict[str, Any]:
    """A deep copy of the JSON object in a POST or PUT, with a ``metadata`` dict."""
    if "protobuf" in header(request, "Content-Type"):  # kubectl's typed generators send it
        raise error(415, "UnsupportedMediaType", "protobuf is not supported; send JSON")
    if not isinstance(request.data, dict):
        raise error(400, "BadRequest", "the request body must be a JSON object")
    result: dict[str, Any] = copy.deepcopy(request.data)
    if not isinstance(result.get("metadata"), dict):
        result["metadata"] = {}
    return result


def api_version(resource: kmock.resource) -> str:
    return f"{resource.group}/{resource.version}" if resource.group else str(resource.version)


def kind_name(resource: kmock.resource) -> str:
    """How the API server names a resource in messages: ``widgets.example.test``, ``pods``."""
    return f"{resource.plural}.{resource.group}" if resource.group else str(resource.plural)


def now() -> str:
    """The current time as the API server writes it: RFC 3339, UTC, whole seconds."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fix_namespace_urls() -> None:
    """Make kmock parse ``/api/v1/namespaces[/NAME[/status|/finalize]]`` as Namespace URLs.

    kmock 0.8 reads them as a namespace prefix: listing namespaces fails with a ValueError
    and ``GET /api/v1/namespaces/default`` becomes a request without a resource. The fix is
    process-wide (kmock has one parser), idempotent, and changes only those misread paths.
    """
    parsing.parse_path = _parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and (
        len(parts) <= 4 or (len(parts) == 5 and parts[4] in ("status", "finalize"))
    ):
        name, subresource = [*parts[3:], None, None][:2]
        return parsing.ParsedPath("", "v1", "namespaces", None, name, subresource)
    return _kmock_parse_path(path)


_kmock_parse_path = parsing.parse_path  # the original, kept before anyone can replace it
