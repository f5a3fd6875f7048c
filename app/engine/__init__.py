"""GPU probing and telemetry, the model catalog, the benchmark and the sandboxed llama.cpp engine."""
