"""The API of the two custom resources: pydantic models, conditions and CRD generation.

This package is the contract users write against. It imports nothing else from the operator.
"""

GROUP = "rollback.mindmate.app"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

APPROVED_BY_ANNOTATION = f"{GROUP}/approved-by"
REQUESTED_BY_ANNOTATION = f"{GROUP}/requested-by"
ABORT_ANNOTATION = f"{GROUP}/abort"
RESUME_TRAFFIC_ANNOTATION = f"{GROUP}/resume-traffic"
TRIGGER_LABEL = f"{GROUP}/trigger"
POLICY_LABEL = f"{GROUP}/policy"
KEPT_REPORT_LABEL = f"{GROUP}/kept-report"
"""On a report ConfigMap that outlives its deleted Rollback, owned by nothing ("true")."""
KEPT_FOR_ANNOTATION = f"{GROUP}/rollback"
"""On a kept report: the name of the Rollback it reports on (a label value is too short)."""
KEPT_UID_ANNOTATION = f"{GROUP}/uid"
"""On a kept report: the uid of the Rollback it reports on."""
KEPT_FINISHED_ANNOTATION = f"{GROUP}/finished-at"
"""On a kept report: when its Rollback ended (ISO 8601), to tell the newest of one name."""
