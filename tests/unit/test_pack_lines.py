"""consumers.render.pack: what `ledger trace` uses to fit a terminal.  A
figure is never split; a line the list goes on after ends with a comma."""

from consumers.render import pack

FIGURES = ["shipped 39,650", "in transit 39,530", "received 120", "consumed 0"]


def test_without_a_width_the_pieces_stay_on_one_line():
    assert pack("kg: ", "    ", FIGURES, ", ", None) == [
        "kg: shipped 39,650, in transit 39,530, received 120, consumed 0"]


def test_pieces_go_on_the_next_line_whole_and_every_line_fits():
    lines = pack("kg: ", "    ", FIGURES, ", ", 40)
    assert lines == ["kg: shipped 39,650, in transit 39,530,", "    received 120, consumed 0"]
    assert max(map(len, lines)) <= 40


def test_the_comma_counts_toward_the_width():
    # "kg: shipped 39,650, in transit 39,530" is 37 characters; with its comma, 38.
    assert pack("kg: ", "    ", FIGURES, ", ", 38)[0] == "kg: shipped 39,650, in transit 39,530,"
    assert pack("kg: ", "    ", FIGURES, ", ", 37)[0] == "kg: shipped 39,650,"


def test_a_piece_longer_than_a_line_breaks_only_between_words():
    lines = pack("│  ", "│    ", ["end use: etching of 39,650 wafers at the Xi'an fab"], ", ", 24)
    assert lines == ["│  end use: etching of", "│    39,650 wafers at", "│    the Xi'an fab"]
    assert max(map(len, lines)) <= 24


def test_a_word_longer_than_the_line_is_kept_whole_rather_than_cut():
    assert pack("", "  ", ["TR-HF-2019-0002/HF-0002-R1"], "  ", 10) == ["TR-HF-2019-0002/HF-0002-R1"]
