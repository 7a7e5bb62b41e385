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
