"""Fakes for the boundaries this machine cannot reach (the NVIDIA driver via ``pynvml``)."""
