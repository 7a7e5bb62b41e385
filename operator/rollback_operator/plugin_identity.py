"""Who the plugin's user is, as the API server sees them: the name approvals are signed with.

`start` writes it to `rollback.mindmate.app/requested-by` and `approve` to `approved-by`. It
comes from a SelfSubjectReview (authentication.k8s.io/v1, `kubectl auth whoami`), never from
the local OS user or a flag's free text, so it is the same `request.userInfo.username` the
chart's admission policy compares the annotations with. `--as USER` impersonates (kubectl's
flag, and the `impersonate` RBAC verb it needs): the review then names USER.
"""

from __future__ import annotations

from rollback_operator.plugin_kube import Kube, KubeError

REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def username(kube: Kube) -> str:
    """The user's Kubernetes username (`system:serviceaccount:NS:NAME` for a ServiceAccount)."""
    try:
        review = kube.request("POST", REVIEWS, REVIEW)
    except KubeError as error:
        if error.status == 404:
            raise KubeError(
                404,
                "the API server does not serve SelfSubjectReview (authentication.k8s.io/v1, "
                "Kubernetes 1.28 and later): the plugin cannot learn who you are",
            ) from None
        raise
    name = str(review.get("status", {}).get("userInfo", {}).get("username") or "")
    if not name:
        raise KubeError(0, "the API server's SelfSubjectReview named no user")
    return name
