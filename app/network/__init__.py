"""The COCOON worker: TL codec, framing, proxy sessions, serving, billing and job records."""
