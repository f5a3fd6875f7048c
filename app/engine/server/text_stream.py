"""Turns generated token bytes into text deltas: incremental UTF-8 and ``stop`` string handling."""

from __future__ import annotations

import codecs


class TextStream:
    """Accumulates token pieces and releases only text that can no longer become a stop string.

    A stop string may span several tokens, so text that could be the beginning of one is held back
    until the next piece settles it. When a stop string appears, :attr:`stopped` becomes true and
    the stop string itself (and anything after it) is never released.
    """

    __slots__ = ("_decoder", "_held", "_stops", "stopped")

    def __init__(self, stops: tuple[str, ...] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = stops
        self._held = ""
        self.stopped = False

    def push(self, piece: bytes) -> str:
        """Add one token's bytes; returns the text that is now safe to send (maybe empty)."""
        if self.stopped:
            return ""
        self._held += self._decoder.decode(piece)
        return self._release()

    def finish(self) -> str:
        """Flush at the end of generation (an incomplete UTF-8 tail becomes U+FFFD)."""
        if self.stopped:
            return ""
        self._held += self._decoder.decode(b"", final=True)
        text, self._held = self._held, ""
        return text

    def _release(self) -> str:
        if not self._stops:
            text, self._held = self._held, ""
            return text
        cut = min((i for i in (self._held.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            text, self._held = self._held[:cut], ""
            return text
        keep = self._longest_stop_prefix_suffix()
        split = len(self._held) - keep
        text, self._held = self._held[:split], self._held[split:]
        return text

    def _longest_stop_prefix_suffix(self) -> int:
        """Length of the longest tail of the held text that is a proper prefix of a stop string."""
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(self._held)), best, -1):
                if self._held.endswith(stop[:size]):
                    best = size
                    break
        return best
