"""The post-rollback checklist: HTTP health, SQL, cache and storage checks."""
