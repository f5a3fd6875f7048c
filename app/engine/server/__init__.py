"""The engine child program: an OpenAI-compatible llama.cpp server with continuous batching.

Run as ``python -m app.engine.server``; :mod:`.options` holds the command-line contract.
"""
