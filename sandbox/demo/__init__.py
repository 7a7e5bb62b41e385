"""`make demo`: the whole product on one machine, no cluster needed.

It starts the emulated Kubernetes API, fake Vercel, Railway and Slack, a real PostgreSQL, an
S3 server (moto) and a real Prometheus; installs the CRDs; applies a local copy of the
runbook's policy (`examples/mindmate-policy.yaml`); runs `rollback-operator run` with its real
adapters; then pushes an error spike into Prometheus and shows, live, the rule going Pending
then Critical, the automatic Rollback and its steps, the verification, the incident report and
the Slack messages. `--full` runs the runbook's full rollback (stop traffic, restore the
database from a pg_dump in S3 and the files to the backup's time, deploy previous) and shows
that what the bad release wrote is gone. Exit 0 only when all of that happened.

Modules: `run` (the story), `stack` (starting everything), `policy` (the demo copy),
`traffic` (metrics), `app` (the app's /health), `data` (database and files), `view` (output).
"""
