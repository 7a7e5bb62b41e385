"""An emulated Kubernetes API (kmock plus a realism layer) in its own process, and its client."""
