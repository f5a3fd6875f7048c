"""View-models: the only places where service state meets Qt signals."""
