"""microservice-demo: a Litestar HTTP service served by Granian and instrumented with OpenTelemetry."""
