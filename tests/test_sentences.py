import pytest

from search.text.sentences import split_sentences
from tests.conftest import SEEDS


def sentences(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


def test_the_seed_sentence_about_miami_keeps_its_dates():
    text = (SEEDS / "002_af525910a62c27f0.txt").read_text(encoding="utf-8")
    [sentence] = [s for s in sentences(text) if "Dmitriev visited Miami" in s]
    assert sentence.endswith("visited Miami from Oct. 24-26.")


@pytest.mark.parametrize(
    "text",
    [
        "Talks began on Jan. 5 in Geneva.",
        "He arrived Sept. 12 and left Dec. 3.",
        "See No. 7 in the list.",
        "The U.S. Senate voted.",
        "Bring tools, e.g. Hammers and saws.",
        "Apples, pears etc. Were on the table.",
    ],
)
def test_abbreviations_do_not_end_a_sentence(text):
    assert sentences(text) == [text]


def test_detached_periods_of_pre_tokenised_text_always_end_a_sentence():
    assert sentences("the talks began in oct . the delegates left") == ["the talks began in oct .", "the delegates left"]


def test_a_month_at_the_end_of_a_sentence_may_stay_attached_but_offsets_stay_exact():
    text = "Talks   began in Oct.   Then came winter!"
    for segment in split_sentences(text):
        assert text[segment.start : segment.end] == text[segment.start : segment.end].strip()
    assert "".join(sentences(text)).replace(" ", "") == text.replace(" ", "")
