"""Typo tolerance: a query word the index does not know is corrected to one it does, before ranking.

Only a word of ``MIN_LETTERS`` or more letters whose analyzed term no committed passage holds is
corrected, so a word the index knows is never touched and short words (where one edit makes another
word) are left alone. Its term is compared with the index's terms (``TermVocabulary``), edit distance
counting a swap of neighbours as one edit: within 1 for words of up to ``ONE_EDIT_LETTERS`` letters,
within 2 beyond; and since a stemmer cuts endings, where typos also fall ("delegaiton" stems to itself,
"delegation" to "deleg"), the terms of the words one edit from the typed one count as one edit away. The
nearest term wins, the one most passages hold among equally near ones.

The correction is that term as a few passages holding it spell it, the spelling nearest the typed word, so
the user is shown "istanbul" and "accords", not the stems.

A small index lacks most of the language, so a correctly spelled word it does not hold must not be
"corrected" into one it does ("prisoners" into "poisoned", "alone" into "along", "trust" into "thrust":
80 questions over the five seed documents had seven such words). Three guards: a word the embedding
model's tokenizer holds whole (``is_word``: one token of its 30,522) is a word, not a typo, while typos
split into pieces ("istambul" is four); the first letter must stay (typos rarely change it); and the
correction as spelled must be within one edit more of the word as typed than its term is (stems hide
endings). Then no seed question and one Cranfield query ("unnecessarily" to "unnecessary") are changed.

The keyword side searches the question with the corrected words added (the misspelled ones match
nothing); the semantic side embeds the question with them in place. A view without a vocabulary corrects
nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from search.backends.contract import ReadView, TermVocabulary, Vocabulary
from search.text.analyzer import Analyzer

MIN_LETTERS = 5
ONE_EDIT_LETTERS = 8
# Candidate terms spelled out, nearest first, to choose among.
_TRIED_TERMS = 5
# Passages read to find how a corrected term is spelled.
_SPELLING_PASSAGES = 10
# Endings that turn an English stem back into a word stemming to it.
_ENDINGS = ("", "e", "s", "es", "ed", "ing", "y", "ion")


@dataclass(frozen=True)
class Correction:
    """A query word as typed and the word it was corrected to (lower case, as the index spells it)."""

    original: str
    corrected: str


@dataclass(frozen=True)
class CorrectedQuery:
    """What each side of the ranking searches: ``semantic`` the question with corrections in place,
    ``keyword`` the question with the corrected words added."""

    semantic: str
    keyword: str
    corrections: tuple[Correction, ...] = ()


def correct_query(view: ReadView, query: str, analyzer: Analyzer, is_word: Callable[[str], bool]) -> CorrectedQuery:
    """``query`` with each word the index does not know, and ``is_word`` does not take for a word of the language,
    corrected where the index knows a near one."""
    if not isinstance(view, TermVocabulary):
        return CorrectedQuery(query, query)
    unknown = [match for match in _unknown_words(view, query, analyzer) if not is_word(match[0])]
    if not unknown:
        return CorrectedQuery(query, query)
    vocabulary = view.vocabulary()
    semantic, corrections = query, []
    for match in reversed(unknown):
        word = match[0]
        spelled = _correction(view, word, analyzer, vocabulary, is_word)
        if spelled is None:
            continue
        corrections.append(Correction(word, spelled))
        semantic = semantic[: match.start()] + _cased_like(word, spelled) + semantic[match.end() :]
    corrections.reverse()
    keyword = " ".join([query, *(c.corrected for c in corrections)])
    return CorrectedQuery(semantic, keyword, tuple(corrections))


def _unknown_words(view: ReadView, query: str, analyzer: Analyzer) -> list[re.Match[str]]:
    """The query's words of ``MIN_LETTERS`` letters or more whose term no passage holds (stop words have no term)."""
    candidates = [
        match
        for match in re.finditer(analyzer.pattern, query)
        if len(match[0]) >= MIN_LETTERS and match[0].isalpha() and analyzer.terms(match[0])
    ]
    if not candidates:
        return []
    frequencies = view.term_statistics(query).document_frequencies
    return [match for match in candidates if frequencies.get(analyzer.terms(match[0])[0], 1) == 0]


def _correction(view: ReadView, word: str, analyzer: Analyzer, vocabulary: Vocabulary, is_word: Callable[[str], bool]) -> str | None:
    """The correction of ``word``: the vocabulary terms near it (``_near_terms``) are ranked nearest first, the
    most frequent first among equally near ones; the first few are spelled (as the word one edit away, where
    that is a word, else as the index spells them), and the spelling nearest the word as typed wins, provided
    it is within one edit more than the word's limit (for a different ending); None when none is."""
    typed, limit = word.lower(), 1 if len(word) <= ONE_EDIT_LETTERS else 2
    term = analyzer.terms(word)[0]
    near = _near_terms(typed, term, limit, analyzer, vocabulary, is_word)
    # Equally near and frequent: the term nearer the word's own term ("sovereignti", not "sovereign", for
    # "sovereigntty", whose one-edit neighbours include "sovereignity").
    ranked = sorted(near, key=lambda choice: (near[choice][0], -vocabulary.passages[choice], OSA.distance(term, choice), choice))
    # Spelled, a stemmer's accident shows: "evenent", one edit from "eveent", stems to "even", two edits away.
    spellings = [near[choice][1] or _spelling(view, choice, typed, analyzer) for choice in ranked[:_TRIED_TERMS]]
    distances = [OSA.distance(typed, spelled) for spelled in spellings]
    best = min(range(len(spellings)), key=distances.__getitem__, default=None)
    return spellings[best] if best is not None and distances[best] <= limit + 1 else None


def _near_terms(
    typed: str, term: str, limit: int, analyzer: Analyzer, vocabulary: Vocabulary, is_word: Callable[[str], bool]
) -> dict[str, tuple[int, str | None]]:
    """Vocabulary terms near the typed word, its first letter kept, with how near and, where one is, a word of the
    language one edit from the typed word that gives the term ("event" for "evennt", when the index holds only
    "events"). Near are the terms of the words one edit from it (a typo in an ending the stemmer cuts,
    "delegaiton", still finds "deleg") and the terms within ``limit`` edits of its own term."""
    near: dict[str, tuple[int, str | None]] = {}
    for variant in _one_edit(typed):
        stems = analyzer.terms(variant)
        if stems and stems[0] != term and stems[0] in vocabulary.passages:
            near[stems[0]] = (1, variant if is_word(variant) else near.get(stems[0], (1, None))[1])
    for choice, distance, _ in process.extract(term, vocabulary.terms, scorer=OSA.distance, score_cutoff=limit, limit=None):
        if choice.isalpha() and choice != term and choice[0] == typed[0] and distance < near.get(choice, (limit + 1,))[0]:
            near[choice] = (distance, None)
    return near


def _one_edit(word: str) -> set[str]:
    """Every word one edit (a letter dropped, added, replaced, or swapped with the next) from ``word``, its first
    letter kept."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:cut], word[cut:]) for cut in range(1, len(word) + 1)]
    return (
        {head + tail[1:] for head, tail in splits if tail}
        | {head + tail[1] + tail[0] + tail[2:] for head, tail in splits if len(tail) > 1}
        | {head + letter + tail[1:] for head, tail in splits if tail for letter in letters}
        | {head + letter + tail for head, tail in splits for letter in letters}
    )


def _spelling(view: ReadView, term: str, typed: str, analyzer: Analyzer) -> str:
    """How the passages holding ``term`` write it (lower-cased), the spelling nearest ``typed`` and among those the
    commonest ("accords", not "according", for "acords"); the term itself when none is found."""
    # The view analyzes what it is asked, and a stem is not always its own stem ("suppos" stems to "suppo"):
    # search for the first plain word that stems to it.
    asked = next((term + ending for ending in _ENDINGS if analyzer.terms(term + ending) == [term]), None)
    if asked is None:
        return term
    ids, _ = view.keyword(asked, _SPELLING_PASSAGES)
    words = Counter(
        word
        for stored in view.passages(ids.tolist()).values()
        for word in re.findall(analyzer.pattern, stored.text.lower())
        if analyzer.terms(word) == [term]
    )
    return min(words, key=lambda word: (OSA.distance(typed, word), -words[word], word)) if words else term


def _cased_like(original: str, word: str) -> str:
    if original.isupper() and len(original) > 1:
        return word.upper()
    return word.capitalize() if original[:1].isupper() else word
