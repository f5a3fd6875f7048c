"""GPU probe and telemetry, model catalog, benchmark, and the sandboxed llama.cpp engine."""
