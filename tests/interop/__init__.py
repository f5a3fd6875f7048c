"""Optional interop tests against the upstream reference binaries (``COCOON_REF_BIN``)."""
