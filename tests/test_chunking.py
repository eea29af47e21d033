import itertools
import random
import re

import pytest

from indexer.chunking import ChunkingParams, chunk_text
from indexer.documents import read_documents
from search.text.sentences import split_sentences
from tests.conftest import SEEDS


def _check_properties(text, chunks, embedder, budget):
    assert chunks, "a non-blank text yields passages"
    covered = [False] * len(text)
    for chunk in chunks:
        passage = text[chunk.start : chunk.end]
        assert passage == passage.strip() and passage
        assert embedder.count_tokens([passage])[0] == chunk.tokens <= budget
        for i in range(chunk.start, chunk.end):
            covered[i] = True
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert missing == []
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


@pytest.mark.parametrize("budget", [32, 128, 254])
def test_seed_passages_reproduce_text_cover_it_and_fit_the_budget(embedder, budget):
    for document in read_documents(SEEDS, 10_000_000).documents:
        chunks = chunk_text(document.text, embedder.count_tokens, ChunkingParams(budget, 1))
        _check_properties(document.text, chunks, embedder, budget)


def _generated_text(rng: random.Random) -> str:
    words = ["peace", "talks", "Istanbul", "négociation", "Донбасс", "x" * 40, "U.S.", "e.g.", "3.14", "—", "“quoted”"]
    paragraphs = []
    for _ in range(rng.randint(1, 6)):
        sentences = []
        for _ in range(rng.randint(1, 8)):
            length = rng.choice([3, 12, 40, 400])  # 400 words: one sentence far over any budget
            sentence = " ".join(rng.choice(words) for _ in range(length))
            sentences.append(sentence + rng.choice([".", "!", "?", "", "…"]))
        paragraphs.append(rng.choice([" ", "  ", "\t"]).join(sentences))
    return rng.choice(["\n\n", "\n", "\r\n\r\n"]).join(paragraphs)


@pytest.mark.parametrize("seed", range(12))
def test_generated_text_properties(embedder, seed):
    rng = random.Random(seed)
    text = _generated_text(rng)
    budget = rng.choice([16, 48, 128])
    chunks = chunk_text(text, embedder.count_tokens, ChunkingParams(budget, rng.randint(0, 2)))
    _check_properties(text, chunks, embedder, budget)


def test_a_sentence_longer_than_the_budget_is_split_at_word_boundaries(embedder):
    text = " ".join(f"word{i}" for i in range(600))
    chunks = chunk_text(text, embedder.count_tokens, ChunkingParams(50, 0))
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.start == 0 or text[chunk.start - 1] == " "
        assert chunk.end == len(text) or text[chunk.end] == " "


def test_a_word_longer_than_the_budget_is_cut_into_pieces_that_fit(embedder):
    text = "x-" * 300  # one whitespace-free "word" of 600 tokens
    chunks = chunk_text(text, embedder.count_tokens, ChunkingParams(16, 0))
    _check_properties(text, chunks, embedder, 16)
    assert len(chunks) > 1


def test_neighbouring_passages_share_whole_sentences_when_overlap_is_set(embedder):
    text = " ".join(f"Sentence number {i} talks about the topic at some length here." for i in range(40))
    chunks = chunk_text(text, embedder.count_tokens, ChunkingParams(64, 1))
    assert len(chunks) > 2
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end, "one sentence is repeated"
        assert re.match(r"Sentence number \d+", text[after.start :])


def test_no_overlap_means_disjoint_passages(embedder):
    text = " ".join(f"Sentence {i} is here." for i in range(200))
    chunks = chunk_text(text, embedder.count_tokens, ChunkingParams(40, 0))
    for before, after in itertools.pairwise(chunks):
        assert after.start >= before.end


def test_sentences_keep_abbreviations_and_split_on_end_punctuation():
    text = "The U.S. delegation met Dr. Smith. Talks resumed! Did they? Yes…\nA heading\n\nNext paragraph."
    sentences = [text[s.start : s.end] for s in split_sentences(text)]
    assert sentences == [
        "The U.S. delegation met Dr. Smith.",
        "Talks resumed!",
        "Did they?",
        "Yes…",
        "A heading",
        "Next paragraph.",
    ]
    assert [s.opens_paragraph for s in split_sentences(text)] == [True, False, False, False, True, True]


def _sectioned_text() -> tuple[str, list[int]]:
    parts, starts, offset = [], [], 0
    for number in range(6):
        body = " ".join(f"Section {number} sentence {i} says something." for i in range(number % 3 + 1))
        block = f"Heading {number}\n{body}\n\n"
        starts.append(offset)
        parts.append(block)
        offset += len(block)
    return "".join(parts), starts


@pytest.mark.parametrize("overlap", [0, 1, 2])
def test_passages_never_cross_a_section_start_nor_repeat_sentences_across_one(embedder, overlap):
    text, starts = _sectioned_text()
    chunks = chunk_text(text, embedder.count_tokens, ChunkingParams(128, overlap), section_starts=starts)
    _check_properties(text, chunks, embedder, 128)
    for chunk in chunks:
        assert not any(chunk.start < start < chunk.end for start in starts)
    assert [c.start for c in chunks] == starts, "small sections: one passage each, no overlap carried in"


def test_without_section_starts_short_sections_are_packed_together(embedder):
    text, _ = _sectioned_text()
    assert len(chunk_text(text, embedder.count_tokens, ChunkingParams(128, 1))) < 6


def test_a_section_longer_than_a_passage_is_still_split_and_covered(embedder):
    intro = "Intro line here.\n"
    body = " ".join(f"Long section sentence {i} goes on." for i in range(80))
    text = intro + "Big heading\n" + body
    chunks = chunk_text(text, embedder.count_tokens, ChunkingParams(48, 1), section_starts=[0, len(intro)])
    _check_properties(text, chunks, embedder, 48)
    assert chunks[0].end == len(intro) - 1 and chunks[1].start == len(intro)
