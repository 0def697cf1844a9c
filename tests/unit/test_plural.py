"""One word for a count, wherever the CLI counts: "1 lot", never "1 lots"."""

import pytest

from consumers.render import plural


@pytest.mark.parametrize("count, noun, nouns, word", [
    (0, "lot", None, "lots"), (1, "lot", None, "lot"), (2, "lot", None, "lots"), (20_000, "record", None, "records"),
    (1, "open alert", None, "open alert"), (3, "open alert", None, "open alerts"),
    (1, "party", "parties", "party"), (0, "party", "parties", "parties"),
    (1, "batch", "batches", "batch"), (2, "batch", "batches", "batches"),
])
def test_one_is_singular_every_other_count_plural(count, noun, nouns, word):
    assert plural(count, noun, nouns) == word
