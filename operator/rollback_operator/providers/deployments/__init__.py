"""Deployment targets: the frontend and backend hosts a rollback moves between deployments.

One module per host (Vercel, Railway), each a `DeploymentTarget` over the shared HTTP layer.
"""
