"""HTTP routes, one module per audience: probes and metrics, the public API, the admin API."""
