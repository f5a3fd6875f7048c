"""Text deltas of the engine server: UTF-8 split across tokens and stop strings across tokens."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.engine.server.text_stream import TextStream


def test_multibyte_character_split_across_tokens() -> None:
    stream = TextStream()
    euro = "€".encode()
    assert stream.push(euro[:1]) == ""
    assert stream.push(euro[1:]) == "€"
    assert stream.finish() == ""


def test_incomplete_tail_becomes_replacement_character() -> None:
    stream = TextStream()
    stream.push(b"ok\xe2\x82")
    assert stream.finish() == "\ufffd"


def test_stop_string_spanning_tokens_is_not_sent() -> None:
    stream = TextStream(("STOP",))
    out = [stream.push(b"hello S"), stream.push(b"TO"), stream.push(b"P and more")]
    assert "".join(out) == "hello "
    assert stream.stopped
    assert stream.finish() == ""
    assert stream.push(b"later") == ""


def test_held_back_prefix_is_released_when_it_stops_matching() -> None:
    stream = TextStream(("STOP",))
    assert stream.push(b"a ST") == "a "
    assert stream.push(b"ART") == "START"
    assert not stream.stopped


def test_earliest_of_several_stops_wins() -> None:
    stream = TextStream(("bb", "a"))
    assert stream.push(b"xxbbya") == "xx"


@given(
    st.lists(st.binary(max_size=6), max_size=12),
    st.lists(st.text(alphabet="ab", min_size=1, max_size=3), max_size=3),
)
def test_output_is_the_text_up_to_the_first_stop(pieces: list[bytes], stops: list[str]) -> None:
    stream = TextStream(tuple(stops))
    out = "".join(stream.push(piece) for piece in pieces) + stream.finish()
    full = b"".join(pieces).decode("utf-8", errors="replace")
    cuts = [i for i in (full.find(s) for s in stops) if i >= 0]
    # Replacement characters may differ at piece borders; compare only well-formed cases.
    if "\ufffd" not in full:
        assert out == (full[: min(cuts)] if cuts else full)
