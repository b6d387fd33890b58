"""Grounded answers with citations: retrieve, prompt, stream, check, and fall back.

:func:`answer` retrieves the sources (:mod:`~archivesrag.rag.search`), builds the prompt
(:mod:`~archivesrag.rag.prompt`), streams the LLM's answer through the checks of
:mod:`~archivesrag.rag.checks`, and returns the sources its ``[n]`` markers refer to; when the best match scores
below ``min_score``, or the reranker judges no source relevant, it says nothing relevant was found instead of
letting the model guess. With a reranker, a source it scores far below the best one is left out of the prompt.

What reaches the user is never a non-answer: the stream is held back until it is clearly an answer; an empty,
marker-only (``[1]``) or echoed answer is asked once more, and then replaced by the extractive answer (the
top source's passage from its best-matching sentence on), labelled as such. Markers to sources that were not given
are dropped.

Example:
    >>> searcher = Searcher(IndexStore.open("my-index"), load_embedder("bundled"), rerank_model="bundled")
    >>> result = answer("Who can propose amendments?", searcher, get_llm("bundled"))
    >>> print("".join(result.stream)); print(result.mode, result.sources[0]["label"], result.sources[0]["snippet"])
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archivesrag.embedder import Embedder
from archivesrag.llm import LLM
from archivesrag.rag.checks import (
    COPY_WORDS,
    MARKER,
    CitationChecker,
    LoopGuard,
    clearly_an_answer,
    complete_segments,
    copied_source,
    degenerate_reason,
    is_refusal,
    may_be_refusal,
    unsourced_names,
)
from archivesrag.rag.prompt import build_messages, reask_messages, refusal_reask_messages
from archivesrag.rag.search import Hit, Searcher
from archivesrag.reranker import Reranker

log = logging.getLogger(__name__)

RELEVANT_LOGIT = 0.0  # the cross-encoder's own boundary (sigmoid 0.5, as trained): above it, a source is relevant
# A source the reranker scores this many logits below the best (under 1/20 of its odds) stays out of the prompt:
# see :func:`near_the_best`.
RELEVANCE_MARGIN = 3.0
NO_CONTEXT = "I could not find anything relevant to that question in the indexed documents."
NOT_RELEVANT = (
    "I could not find a passage that answers that question in the indexed documents: the closest ones, listed "
    "below, were judged not relevant to it."
)
PROMPT_CHARS = 600  # of each source in the prompt; bench/answers.py: see README "Benchmarks"
PASSAGE_CHARS = 300  # of the passage shown of a source: its snippet and the extractive answer


# ---------------------------------------------------------------- the extractive answer

# Not after "e.g." / "eg." / "i.e." / "cf." / "vs.": the Debian FAQ's "remove them, e.g. by running aptitude clean."
# lost its answer to such a cut, in the snippet, the extractive answer and the refusal re-ask's quote (and ab's "-T"
# entry, "Content-type header to use for POST/PUT data, eg. application/x-www-form-urlencoded", its example).
SENTENCE_END = re.compile(r"(?<=[.!?;:])(?<!\be\.g\.)(?<!\beg\.)(?<!\bi\.e\.)(?<!\bcf\.)(?<!\bvs\.)\s+|\n\s*\n+")
BLANK_LINE = re.compile(r"\n\s*\n")


def split_sentences(text: str, min_words: int = 4, max_chars: int = 400) -> list[str]:
    r"""Sentences of a chunk that can stand alone as an answer; a run longer than ``max_chars`` with no sentence end
    in it comes in pieces of whole lines (:func:`line_pieces`).

    A single line break is a PDF's line wrap, not the end of a sentence (only a blank line is).

    Example:
        >>> split_sentences("No Person shall be a Senator who\nshall be thirty. The next one is here.")
        ['No Person shall be a Senator who shall be thirty.', 'The next one is here.']
    """
    out = []
    for raw in sentence_runs(text):
        out += [piece for piece in line_pieces(raw, max_chars) if len(piece.split()) >= min_words]
    return out or [" ".join(text.split())[:max_chars]]


def sentence_runs(text: str) -> list[str]:
    """``text`` cut at each sentence end (:data:`SENTENCE_END`), but not at a colon or semicolon inside brackets.

    Postfix writes every parameter as "smtpd_client_connection_count_limit (default: 50) — The maximum number of
    connections…": cut at its colon, the parameter's name was a three-word piece, too short to be a sentence, and
    the value went out of every sentence that names it, so the snippet, the extractive answer and the prompt window
    could not pair them ("(translation: if anvil(8) breaks…)" was cut the same way). A blank line still ends.

    Example:
        >>> sentence_runs("max_use (default: 100) — Connections served. Then: stop.")
        ['max_use (default: 100) — Connections served.', 'Then:', 'stop.']
    """
    runs, start = [], 0
    for end in SENTENCE_END.finditer(text):
        run = text[start : end.start()]
        if run[-1:] in ":;" and run.count("(") > run.count(")") and not BLANK_LINE.search(end.group()):
            continue  # inside brackets: "(default: 50)"
        runs.append(run)
        start = end.end()
    runs.append(text[start:])
    return runs


def line_pieces(run: str, max_chars: int) -> list[str]:
    r"""``run`` on one line when it fits in ``max_chars``, else in pieces of whole lines that each fit (a line
    longer than that is cut). A table's rows, a list or a code block has no sentence end: cut at ``max_chars``,
    all of it past the cut was out of reach of the snippet, the extractive answer and the prompt window (the CMake
    manual's table of compiler IDs, 1,500 characters: its "NVHPC — NVIDIA HPC Compiler" row was never shown).

    Example:
        >>> line_pieces("Value — Name\nGNU — GNU Compiler Collection\nNVHPC — NVIDIA HPC Compiler", 45)
        ['Value — Name GNU — GNU Compiler Collection', 'NVHPC — NVIDIA HPC Compiler']
    """
    flat = " ".join(run.split())
    if len(flat) <= max_chars:
        return [flat] if flat else []
    pieces, piece = [], ""
    for line in (" ".join(line.split()) for line in run.splitlines()):
        if piece and line and len(piece) + 1 + len(line) > max_chars:
            pieces.append(piece)
            piece = ""
        piece = f"{piece} {line}".strip()
    return [p[:max_chars] for p in [*pieces, piece] if p]


@dataclass(frozen=True)
class Sentence:
    """A source's sentence that best answers the question, and its score (the cross-encoder's logit, else the
    cosine): the scores of one call can be compared across sources. ``passage`` is the sentence with the ones
    that follow it, up to :data:`PASSAGE_CHARS` (:func:`passage_from`)."""

    text: str
    score: float
    passage: str


def passage_from(text: str, sentence: str, max_chars: int = PASSAGE_CHARS) -> str:
    """``sentence`` and the text after it in ``text``, whole sentences (:func:`sentence_runs`) while it fits in
    ``max_chars`` (``sentence`` always), word for word as the source has it (whitespace aside): what a person
    reads of a source and what the extractive answer gives (the re-asks quote the best sentence alone).

    Why: the sentence that best matches a question often leads up to the fact rather than stating it ("diff
    determines whether a file is text or binary by checking the first few bytes in the file;" then, two sentences
    on, "If every byte in that part of the file is non-null, diff considers the file to be text"). Over
    bench/answers.py's 407 first answerable questions (the sources the LLM is given), source [1]'s best sentence
    holds the key fact for 286, the passage of up to 300 characters from it for 335 (250: 320; 400: 342), with a
    median of 240 characters. Whole runs of the text, not the sentences :func:`split_sentences` keeps: that drops
    pieces under 4 words, and a passage built from its sentences skipped them (55 of 791 sources' passages were
    not the source's words as they stand).

    Example:
        >>> passage_from("Intro. It checks the first bytes; their number varies. A null byte: binary.", "It checks "
        ...              "the first bytes;", 60)
        'It checks the first bytes; their number varies. A null byte:'
    """
    flat = " ".join(text.split())
    at = flat.find(sentence)
    if at < 0:
        return sentence
    out = sentence
    for run in sentence_runs(flat[at + len(sentence) :]):
        run = run.strip()
        if not run:
            continue
        if len(out) + 1 + len(run) > max_chars:
            break
        out = f"{out} {run}"
    return out


def best_sentences(
    question: str, hits: list[Hit], embedder: Embedder, reranker: Reranker | None = None
) -> list[Sentence]:
    """The sentence of each hit that best answers the question: the start of the snippet a person reads under the
    answer (its :attr:`Sentence.passage`), the centre of the source's window in the prompt (:func:`focus`), and the
    start of the extractive answer for the top hit.

    With a reranker the cross-encoder judges the sentences (one call for all hits), else their cosine to the
    question (one encode call). Measured on 95 fact-bearing sources of bench/answers.py's three sets: the
    cross-encoder's sentence holds the key fact in 56 (the embedder's: 53), and the window around it in 94 (92);
    the two it wins back were answers the 1.5B got wrong for want of the fact in its window.
    """
    per_hit = [split_sentences(h.chunk.text) for h in hits]
    flat = [s for sentences in per_hit for s in sentences]
    if not flat:
        return []
    if reranker is not None:
        scores = reranker.score(question, flat)
    else:
        scores = embedder.encode_passages(flat) @ embedder.encode_queries([question])[0]
    out, start = [], 0
    for hit, sentences in zip(hits, per_hit, strict=True):
        part = scores[start : start + len(sentences)]
        best = int(np.argmax(part))
        out.append(Sentence(sentences[best], float(part[best]), passage_from(hit.chunk.text, sentences[best])))
        start += len(sentences)
    return out


def closest_source(best: list[Sentence]) -> int:
    """The number of the source whose best sentence scores highest: the one a re-ask quotes.

    Why: the reranker ranks whole chunks, the cross-encoder's sentence scores say which sentence answers. Asked
    "How many bytes does cmp -n 4MB compare at most?", source [1] (the options list, best sentence -1.1: "-n count,
    --bytes=count — Compare at most count input bytes.") ranked above source [2] (4.4: "... whereas -n 4MB is
    equivalent to -n 4000000."); quoted source [1]'s sentence, the 1.5B refused twice. Of the 26 answers
    bench/answers.py re-asked at stop 43, three had a best sentence outside source [1]; this was the one re-asked
    with a quote (the other two, bare citations, are re-asked without one). The extractive fallback stays source
    [1]'s passage: over 407 questions it cites the gold page more often than the best sentence's source (386/376).

    Example:
        >>> closest_source([Sentence("a", -1.1, "a"), Sentence("b", 4.4, "b")])
        2
    """
    return max(range(len(best)), key=lambda i: best[i].score) + 1


def focus(text: str, sentence: str, max_chars: int = 600) -> str:
    """The part of a chunk around its best-matching sentence, at most ``max_chars`` long (the whole chunk when it
    is shorter): a third of the room before the sentence, the rest from it on (a word cut at the start is dropped;
    the end may stop inside a word).

    Example:
        >>> focus("Aaa aaa. Bbb bbb. Ccc ccc. Ddd ddd.", "Ccc ccc.", max_chars=20)
        'bbb. Ccc ccc. Ddd d'
    """
    flat = " ".join(text.split())
    if len(flat) <= max_chars:
        return flat
    at = max(0, flat.find(sentence))
    start = max(0, min(at - max_chars // 3, len(flat) - max_chars))
    window = flat[start : start + max_chars]
    if start > 0:
        window = window[window.find(" ") + 1 :] if " " in window[:40] else window
    return window


EXTRACTIVE_NOTE = (
    "(Extractive answer: the passage of source [1] that best matches the question; the LLM gave no usable answer.)"
)
REFUSED_RELEVANT = "a refusal with a relevant source [1]"  # why a refusal was held back (Answer.rejected)
COPIED_LOWER = "a copy of source [{n}] where source [1] answers better"  # why a pasted passage was held back
EXTRACTIVE_HELD_NOTE = (
    "(Extractive answer: the passage of source [1] that best matches the question. The LLM {what}; the reranker "
    "judged this source relevant.)"
)
UNCITED_NOTE = (
    "(This answer cites no source: none of the passages found states it, so it may come from the model's own "
    "knowledge rather than your documents.)"
)
UNSOURCED_NOTE = "(Not in the sources: {names}. The model may have made {them} up: check before you use {them}.)"
REFUSED = "said the sources do not cover it"
PASTED = "repeated a passage of a source that answers less well"
NO_ANSWER = "gave no usable answer"
EXTRACTIVE_REFUSED_NOTE = EXTRACTIVE_HELD_NOTE.format(what="said twice that the sources do not cover it")


def _what_it_did(why: str) -> str:
    """One attempt's fault (an :attr:`Answer.rejected` entry), as the extractive answer's label tells it."""
    if why == REFUSED_RELEVANT:
        return REFUSED
    return PASTED if why.startswith(COPIED_LOWER.split("[")[0]) else NO_ANSWER


def _fallback_note(rejected: list[str]) -> str:
    """The label of the extractive answer, saying what the model did in its two tries: the reader should know
    why the LLM's words were not shown (a refusal or a pasted passage held back because the reranker vouched for
    source [1]).

    Example:
        >>> _fallback_note([COPIED_LOWER.format(n=2), REFUSED_RELEVANT]).split("The LLM ")[1].split(";")[0]
        'repeated a passage of a source that answers less well, then said the sources do not cover it'
    """
    first, second = (_what_it_did(why) for why in rejected[-2:])
    if first == second == NO_ANSWER:
        return EXTRACTIVE_NOTE
    if first == second == REFUSED:
        return EXTRACTIVE_REFUSED_NOTE
    return EXTRACTIVE_HELD_NOTE.format(what=f"twice {first}" if first == second else f"{first}, then {second}")


# ---------------------------------------------------------------- answering


@dataclass
class Answer:
    """An answer in the making: iterate ``stream`` for its text; ``sources`` are numbered as in the text.

    ``mode`` is ``llm`` (the model's answer), ``extractive`` (the model gave no usable answer twice, so the best
    sentence of the top source is shown, labelled as such) or ``none`` (nothing relevant was found); it and
    ``attempts``/``rejected`` are final once ``stream`` is exhausted.
    """

    question: str
    hits: list[Hit]
    stream: Iterator[str]
    sources: list[dict[str, Any]] = field(default_factory=list)
    found: bool = True
    mode: str = "llm"
    attempts: int = 0
    rejected: list[str] = field(default_factory=list)  # why each discarded attempt was degenerate
    cited: list[int] = field(default_factory=list)  # the source numbers the final text cites


def _copied_lower(text: str, texts: list[str], best: list[Sentence]) -> int | None:
    """The source below [1] that ``text`` pastes word for word when source [1]'s best sentence scores higher than
    that source's: the model answered from the wrong passage (see :func:`~archivesrag.rag.checks.copied_source`)."""
    n = copied_source(text, texts)
    return n if n is not None and n > 1 and best[0].score > best[n - 1].score else None


def _unrepeated(raw: str, start: int, guard: LoopGuard, final: bool) -> tuple[list[str], int, bool]:
    """The complete sentences of ``raw`` from ``start`` that do not repeat an earlier one (:class:`LoopGuard`),
    where they end, and whether one did (then ``raw`` ends there for good)."""
    segments, end = complete_segments(raw, start, final)
    kept, looped = guard.keep(segments)
    return kept, (start + sum(map(len, kept)) if looped else end), looped


def _guarded(result: Answer, llm: LLM, best: list[Sentence], max_tokens: int, prompt_chars: int) -> Iterator[str]:
    """Stream the model's answer, sentence by sentence with checked citations (:class:`CitationChecker`), and
    show nothing until it is clearly an answer; on a degenerate answer ask once more, then fall back to the
    extractive answer.

    When the reranker judged source [1] relevant, a refusal ("the sources do not cover it") is held back and asked
    once more: small models refuse with the answer in front of them. So is an answer that pastes a lower source's
    passage word for word while source [1]'s best sentence scores higher (:func:`_copied_lower`). The second try's
    prompt quotes the best sentence of all, usually source [1]'s (:func:`closest_source`). A second refusal or
    paste, or a second try that is no answer at all, falls back to the extractive answer, as above (the reranker
    vouches for its source), labelled with what the model said. An answer that ends up citing no source (none
    backs it) says so below it (:data:`UNCITED_NOTE`); one that cites but names a parameter, function or option no
    source holds lists them (:data:`UNSOURCED_NOTE`).
    """
    question, hits = result.question, result.hits
    labels = [h.chunk.label() for h in hits]
    snippet = best[0].passage
    quoted = closest_source(best)  # the re-asks quote its best sentence, not its passage: see README "Stop 43"
    quote = best[quoted - 1].text
    texts = [focus(h.chunk.text, s.text, prompt_chars) for h, s in zip(hits, best, strict=True)]
    messages = build_messages(question, hits, texts)
    top_logit = hits[0].rerank_score
    for attempt in (1, 2):
        result.attempts = attempt
        hold = top_logit is not None and top_logit > RELEVANT_LOGIT
        checker, guard = CitationChecker(question, texts), LoopGuard()
        raw, done, ready, said, shown, copy_of, looped = "", 0, "", "", False, None, False
        with closing(llm.stream(messages, temperature=0, max_tokens=max_tokens)) as pieces:
            for piece in pieces:
                raw += piece
                segments, done, looped = _unrepeated(raw, done, guard, final=False)
                raw = raw[:done] if looped else raw
                ready += "".join(checker.fix(seg) for seg in segments)
                if not shown and copy_of is None and ready and clearly_an_answer(raw, question, labels):
                    if hold and len(MARKER.sub(" ", ready).split()) < COPY_WORDS and not looped:
                        continue  # too short yet to tell a paste from an answer
                    copy_of = _copied_lower(ready, texts, best) if hold else None
                    shown = copy_of is None and not (hold and may_be_refusal(raw))
                if shown and ready:
                    yield ready
                    said += ready
                    ready = ""
                if looped:
                    log.info("answer attempt %d began repeating itself: cut after %d characters", attempt, done)
                    break  # closing the stream stops the server writing the rest of the loop
        segments, done, _ = _unrepeated(raw, done, guard, final=True)
        ready += "".join(checker.fix(seg) for seg in segments)
        # What would reach the user is judged too: a sentence that was only talk about its citations is gone.
        why = None if shown else degenerate_reason(raw, question, labels) or degenerate_reason(ready, question, labels)
        if why is None and copy_of is not None:
            log.info(
                "answer attempt %d pasted source [%d] (its best sentence %.1f) where source [1]'s scores %.1f: %r",
                attempt,
                copy_of,
                best[copy_of - 1].score,
                best[0].score,
                raw[:80],
            )
            result.rejected.append(COPIED_LOWER.format(n=copy_of))
            if attempt == 2:
                break
            messages = refusal_reask_messages(question, hits, quote, texts, quoted)
            continue
        if why is None and hold and not shown and is_refusal(raw, texts):
            log.info(
                "answer attempt %d refused although the reranker judged source [1] relevant (logit %.1f): %r",
                attempt,
                top_logit,
                raw[:80],
            )
            result.rejected.append(REFUSED_RELEVANT)
            if attempt == 2:
                break
            messages = refusal_reask_messages(question, hits, quote, texts, quoted)
            continue
        if why is None:
            yield (last := ready.rstrip() + checker.finish())
            result.cited = sorted(checker.cited)
            if not result.cited and not is_refusal(raw, texts):
                # Asked which command C-r runs, with no source that says, the 1.5B answered from what it knew:
                # right in one run, wrong in another. The reader should know which answers the documents back.
                yield f"\n\n{UNCITED_NOTE}"
            elif names := unsourced_names(said + last, question, [h.chunk.text for h in hits] + labels):
                log.info("answer names what no source holds: %s", names)
                them = "them" if len(names) > 1 else "it"
                yield "\n\n" + UNSOURCED_NOTE.format(names=", ".join(f"`{n}`" for n in names), them=them)
            return
        log.warning("answer attempt %d was %s: %r", attempt, why, raw[:80])
        result.rejected.append(why)
        messages = reask_messages(question, hits, raw, texts)
    result.mode, result.cited = "extractive", [1]
    yield f"{snippet} [1]\n\n{_fallback_note(result.rejected)}"


def source_dict(n: int, hit: Hit, snippet: str) -> dict[str, Any]:
    """What the CLI's ``--json`` and the app show of one source."""
    c = hit.chunk
    return {
        "n": n,
        "label": c.label(),
        "source": c.source,
        "page": c.page,
        "line": c.line,
        "url": c.url,
        "title": c.title,
        "section": c.section,
        "ocr": c.ocr,
        "score": round(hit.score, 4),
        "snippet": snippet,
        "text": c.text,
    }


def _retrieve(
    question: str, searcher: Searcher, k: int, min_score: float, margin: float = RELEVANCE_MARGIN
) -> tuple[Answer, list[Sentence]]:
    """The sources for ``question`` and each one's best sentence, as an :class:`Answer` still without its text;
    below ``min_score`` an answer that says nothing relevant was found. So it says when the reranker judges even
    the best source not relevant (its logit at or below :data:`RELEVANT_LOGIT`), but then lists the sources: the
    reader may still want to look.

    Why: asked what the documents do not hold, the 1.5B answers from what it knows and cites a source that merely
    shares its words ("The Debian swirl logo was designed by Bruce Perens, who ... was working also at Pixar [1]",
    source [1] being the FAQ's page on the Toy Story codenames). Over bench/answers.py's 16 development questions
    the documents do not answer, the reranker's best logit is at or below 0 for 8; over its first 407 answerable
    questions, for none (lowest 0.53); over the Z Shell Manual's 24, held out, for one (-0.4: "How large can the
    directory stack grow by default?", whose page says "by default there is no limit"), which is then not answered.
    """
    hits = searcher.search(question, k)
    if not hits or max(h.score for h in hits) < min_score:
        return Answer(question, [], iter([NO_CONTEXT]), found=False, mode="none"), []
    top_logit = hits[0].rerank_score
    relevant = top_logit is None or top_logit > RELEVANT_LOGIT
    hits = near_the_best(hits, margin) if relevant else hits
    best = best_sentences(question, hits, searcher.embedder, searcher.reranker)
    sources = [source_dict(n, h, s.passage) for n, (h, s) in enumerate(zip(hits, best, strict=True), 1)]
    if not relevant:
        log.info("no source judged relevant (the reranker's best logit %.1f): no answer, sources listed", top_logit)
        return Answer(question, hits, iter([NOT_RELEVANT]), sources, found=False, mode="none"), best
    return Answer(question, hits, iter(()), sources), best


def near_the_best(hits: list[Hit], margin: float = RELEVANCE_MARGIN) -> list[Hit]:
    """The reranked ``hits`` the LLM is given: those within ``margin`` logits of the best one (all of them when
    no reranker scored them).

    Why: a passage the cross-encoder scores far below the best is rarely the answer, and a small model reads it
    anyway: asked what goes into Varnish's hash key when a request has no Host header, the 1.5B cited the Cookies
    section (3.6 logits below the hashing page) beside the right page; asked how many fields a master.cf line has,
    it answered rightly and cited transport(5)'s SEE ALSO list (7.3 below). Over bench/answers.py's 383 questions
    a margin of 3 (1/20 of the best source's odds) leaves out 403 of the 1,149 sources (a third of the prompt) and
    never the only one holding the gold page or the key fact (margins of 2 or 2.5 lose a fact); rerun, gold cited
    363 -> 365, key fact 356 -> 358, wrong cites 7 -> 6, time to first token about 2 s less.

    Example:
        >>> [h.rerank_score for h in near_the_best([Hit(c1, 0.8, 6.1), Hit(c2, 0.7, 4.0), Hit(c3, 0.7, 2.5)])]
        [6.1, 4.0]
    """
    scores = [h.rerank_score for h in hits]
    if None in scores:
        return hits
    top = max(scores)
    return [h for h, score in zip(hits, scores, strict=True) if score >= top - margin]


def answer(
    question: str,
    searcher: Searcher,
    llm: LLM,
    k: int = 3,
    min_score: float = 0.25,
    max_tokens: int = 256,
    prompt_chars: int = PROMPT_CHARS,
    margin: float = RELEVANCE_MARGIN,
) -> Answer:
    """Retrieve, then stream a grounded answer that is never empty or only markers (see :func:`_guarded`).

    Up to ``k`` sources reach the prompt, with a reranker only those within ``margin`` logits of the best
    (:func:`near_the_best`; ``math.inf`` gives all ``k``), each as its best-matching ``prompt_chars``
    (:func:`focus`). Below ``min_score`` no LLM call is made at all and the answer says plainly that nothing
    relevant was found.
    """
    result, best = _retrieve(question, searcher, k, min_score, margin)
    if result.found:
        result.stream = _guarded(result, llm, best, max_tokens, prompt_chars)
    return result


def extractive_answer(question: str, searcher: Searcher, k: int = 3, min_score: float = 0.25) -> Answer:
    """The no-LLM baseline: the best-matching sentence of the top source, cited (bench/answers.py compares it; the
    sentence alone, as the baseline was defined, where the fallback gives its passage)."""
    result, best = _retrieve(question, searcher, k, min_score)
    if result.found:
        result.stream, result.mode, result.cited = iter([f"{best[0].text} [1]"]), "extractive", [1]
    return result
