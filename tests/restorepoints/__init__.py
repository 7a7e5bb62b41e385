"""RestorePoints: the model, the operator's own dumps and storage copies, the schedule."""
