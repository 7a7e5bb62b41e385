"""kopf glue only: decorators, turning bodies into models, and the live controls of a run.

Handlers get every dependency from the typed memo (`Deps`) and never name a concrete provider.
"""
