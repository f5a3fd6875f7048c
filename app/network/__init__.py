"""The COCOON worker: TL codec, framing, proxy sessions, request serving, billing and job records."""
