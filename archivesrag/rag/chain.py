"""Retrieval and grounded answers with citations.

:class:`Searcher` finds chunks for a question: dense top-k from the index, optionally fused with BM25 (bm25s) by
reciprocal rank fusion, diversified with MMR, or reordered by a cross-encoder. :class:`ArchivesRetriever` exposes
it as a LangChain ``BaseRetriever`` for users' own chains. :func:`answer` builds a prompt with numbered sources,
streams the LLM's answer, and returns the sources its ``[n]`` markers refer to; when the best match scores below
``min_score`` it says nothing relevant was found instead of letting the model guess.

What reaches the user is never a non-answer: the stream is held back until it is clearly an answer; an empty,
marker-only (``[1]``) or echoed answer is asked once more, and then replaced by the extractive answer (the
best-matching sentence of the top source), labelled as such. Markers to sources that were not given are dropped.

Example:
    >>> searcher = Searcher(IndexStore.open("my-index"), load_embedder("bundled"), rerank_model="bundled")
    >>> result = answer("Who can propose amendments?", searcher, get_llm("bundled"))
    >>> print("".join(result.stream)); print(result.mode, result.sources[0]["label"], result.sources[0]["snippet"])
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from archivesrag.embedder import Embedder
from archivesrag.llm import LLM
from archivesrag.rag.store import Chunk, IndexStore
from archivesrag.reranker import Reranker, load_reranker

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "You answer questions from the numbered sources you are given, and from nothing else."
ANSWER_RULES = (
    "Answer the question below from these sources. Write one or two sentences that state the answer in the words "
    "of the sources, then the number of the source you used in square brackets, like [1]. Only if no source "
    "answers the question, say that the sources do not cover it."
)
REASK = (
    'That was not an answer. Write a full sentence that answers the question "{question}" with the facts from '
    "the sources, then the source number in square brackets."
)
REASK_REFUSAL = (
    'Source [1] looks relevant to this question. Its closest sentence is: "{sentence}" If that answers the '
    "question, write the answer in a full sentence, then [1]; only if it does not, say that the sources do not "
    "cover it."
)
RELEVANT_LOGIT = 0.0  # the cross-encoder's own boundary (sigmoid 0.5, as trained): above it, a source is relevant
NO_CONTEXT = "I could not find anything relevant to that question in the indexed documents."
RRF_K = 60  # the constant of Cormack et al.'s reciprocal rank fusion


@dataclass
class Hit:
    """A retrieved chunk and its cosine similarity to the question."""

    chunk: Chunk
    score: float
    rerank_score: float | None = None  # the cross-encoder's logit, when a reranker ordered the hits


class Searcher:
    """Question -> ranked chunks, over one :class:`IndexStore`.

    Args:
        store: the index.
        embedder: must be the model that built the index.
        hybrid: fuse dense and BM25 rankings (helps with names, codes, rare words).
        mmr: maximal marginal relevance over the candidates (fewer near-duplicate chunks).
        rerank_model: ``bundled`` (ms-marco-MiniLM-L-12-v2 ONNX), a CrossEncoder dir or HF id, or a loaded
            :class:`~archivesrag.reranker.Reranker`: reorders the candidates by cross-encoder relevance.
        fetch_k: candidates taken before fusion/MMR/rerank.
    """

    def __init__(
        self,
        store: IndexStore,
        embedder: Embedder,
        hybrid: bool = False,
        mmr: bool = False,
        rerank_model: str | Reranker | None = None,
        fetch_k: int = 30,
        lambda_mult: float = 0.5,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.hybrid = hybrid
        self.mmr = mmr
        self.fetch_k = fetch_k
        self.lambda_mult = lambda_mult
        self._bm25: tuple[int, Any, list[int]] | None = None
        self.reranker = load_reranker(rerank_model) if isinstance(rerank_model, str) else rerank_model

    def _bm25_ranking(self, query: str, k: int) -> list[int]:
        import bm25s

        gen = self.store.generation
        if self._bm25 is None or self._bm25[0] != gen:
            ids, texts = self.store.all_texts()
            retriever = bm25s.BM25()
            retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
            self._bm25 = (gen, retriever, ids)
        _, retriever, ids = self._bm25
        if not ids:
            return []
        docs, scores = retriever.retrieve(
            bm25s.tokenize([query], stopwords="en", show_progress=False), k=min(k, len(ids)), show_progress=False
        )
        return [ids[int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def search(self, query: str, k: int = 4) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first, each with its cosine score."""
        qv = self.embedder.encode_queries([query])[0]
        wide = self.hybrid or self.mmr or self.reranker is not None
        dense = self.store.search(qv, self.fetch_k if wide else k)
        ranked = [i for i, _ in dense]
        if self.hybrid:
            fused: dict[int, float] = {}
            for ranking in (ranked, self._bm25_ranking(query, self.fetch_k)):
                for r, i in enumerate(ranking):
                    fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + r + 1)
            ranked = sorted(fused, key=fused.__getitem__, reverse=True)[: self.fetch_k]
        vecs = self.store.vectors(ranked)
        scores = dict(zip(ranked, (vecs @ qv).tolist(), strict=True))
        if self.mmr and ranked:
            from langchain_core.vectorstores.utils import maximal_marginal_relevance

            picked = maximal_marginal_relevance(qv, vecs, lambda_mult=self.lambda_mult, k=k)
            ranked = [ranked[i] for i in picked]
        chunks = self.store.get(ranked)
        if self.reranker is None or not chunks:
            return [Hit(c, float(scores[c.id])) for c in chunks[:k]]
        logits = self.reranker.score(query, [c.search_text for c in chunks])
        order = np.argsort(-logits, kind="stable")[:k]
        return [Hit(chunks[i], float(scores[chunks[i].id]), float(logits[i])) for i in order]


class ArchivesRetriever(BaseRetriever):
    """The index as a LangChain retriever: ``retriever.invoke("question")`` -> list of Documents.

    Each Document's metadata carries ``source``, ``page``, ``url``, ``title``, ``score`` and ``label``.
    """

    searcher: Any
    k: int = 4

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [
            Document(
                page_content=h.chunk.text,
                metadata={
                    "source": h.chunk.source,
                    "page": h.chunk.page,
                    "url": h.chunk.url,
                    "title": h.chunk.title,
                    "score": h.score,
                    "label": h.chunk.label(),
                },
            )
            for h in self.searcher.search(query, self.k)
        ]


def build_messages(
    question: str, hits: list[Hit], texts: list[str] | None = None, hint: str = ""
) -> list[dict[str, str]]:
    """The prompt, shaped for small models: the sources first, then the instruction, the question last (small
    models follow what they read last), asking for a sentence that states the answer before its citations.

    ``texts`` replaces the chunks' text (see :func:`focus`): prompt evaluation is most of the wait on a CPU.
    ``hint`` (ending in a blank line) goes just before the question.
    """
    texts = texts or [h.chunk.text for h in hits]
    sources = "\n\n".join(
        f"[{n}] ({h.chunk.label()})\n{text}" for n, (h, text) in enumerate(zip(hits, texts, strict=True), start=1)
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Sources:\n\n{sources}\n\n{ANSWER_RULES}\n\n{hint}Question: {question}"},
    ]


def reask_messages(question: str, hits: list[Hit], bad: str, texts: list[str] | None = None) -> list[dict[str, str]]:
    """A second try after a degenerate answer: the first turn, the bad answer, and a plain correction."""
    return [
        *build_messages(question, hits, texts),
        {"role": "assistant", "content": bad},
        {"role": "user", "content": REASK.format(question=question)},
    ]


def refusal_reask_messages(
    question: str, hits: list[Hit], sentence: str, texts: list[str] | None = None
) -> list[dict[str, str]]:
    """A second try after "the sources do not cover it" although the reranker judged source [1] relevant: the
    first prompt with a hint before the question that quotes source [1]'s closest ``sentence``. The refusal itself
    is left out: shown its own refusal, a small model repeats it."""
    return build_messages(question, hits, texts, hint=REASK_REFUSAL.format(sentence=sentence) + "\n\n")


# ---------------------------------------------------------------- checking what the model wrote

MARKER = re.compile(r"\[\s*(\d+)\s*\]")
ANY_MARKERS = re.compile(r"\[[\d\s,;–-]*\]")
OPEN_MARKER = re.compile(r"\[[\d\s,;–-]*$")  # a marker the model began but never closed: " [3"
WORD = re.compile(r"[^\W_]+")
PROMPT_ECHO = ("sources:", "question:", ANSWER_RULES[:40].lower())
HOLD_WORDS = 4  # words of real text an answer must show before it is streamed to the user
PROMPT_CHARS = 600  # of each source in the prompt; bench/answers.py: see README "Benchmarks"


def _norm(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def _strip_labels(text: str, labels: list[str]) -> str:
    """The answer without citation markers and without the sources' labels (``[2] (file.pdf, page 7)``)."""
    text = OPEN_MARKER.sub(" ", ANY_MARKERS.sub(" ", text))
    for label in labels:
        text = text.replace(label, " ")
    return re.sub(r"\(\s*[,;.\s]*\)", " ", text)


def degenerate_reason(text: str, question: str, labels: list[str]) -> str | None:
    """Why an answer is no answer, or None when it is one.

    Degenerate: empty; only ``[n]`` markers (with or without the sources' labels); the question repeated; a piece
    of the prompt repeated; a pointer that adds no word to the question's ("The command that finalizes
    debian/changelog is [3]."). A short real answer ("Congress.", "-b [1]") is not degenerate.

    Example:
        >>> degenerate_reason("[1] (a.pdf, page 2)", "Who?", ["a.pdf, page 2"])
        'only citation markers'
        >>> degenerate_reason("Congress declares war [1].", "Who declares war?", []) is None
        True
        >>> degenerate_reason("The site that serves updates is [2].", "Which site serves updates?", [])
        'nothing beyond the question'
    """
    if not text.strip():
        return "empty"
    body = _norm(_strip_labels(text, labels))
    if not body:
        return "only citation markers"
    q = _norm(question)
    if body == q or (len(body) >= 12 and q.startswith(body)):
        return "an echo of the question"
    low = text.strip().lower()
    if any(low.startswith(p) for p in PROMPT_ECHO) or ANSWER_RULES[:40].lower() in low:
        return "an echo of the prompt"
    if only_restates(body, question):
        return "nothing beyond the question"
    return None


def only_restates(answer: str, question: str) -> bool:
    """The answer adds no word to a wh-question's but function words ("The site that serves updates is [2]."). A
    yes/no question may be answered by restating it, and short words count ("-b", "3").

    Example:
        >>> only_restates("The stable release does not get new features.", "Does the stable release get new features?")
        False
    """
    if YES_NO.match(question):
        return False
    new = set(WORD.findall(answer.lower())) - set(WORD.findall(question.lower()))
    return not new - STOPWORDS - FUNCTION_WORDS


def _clearly_an_answer(text: str, question: str, labels: list[str]) -> bool:
    """True once the start of a streamed answer can no longer turn out degenerate (then it is shown)."""
    body = _norm(_strip_labels(text, labels))
    if len(body.split()) < HOLD_WORDS or _norm(question).startswith(body) or only_restates(body, question):
        return False
    low = text.strip().lower()
    return not any(p.startswith(low[: len(p)]) or low.startswith(p) for p in PROMPT_ECHO)


STOPWORD_TEXT = (
    "the and for with that this from are was were has have had not but can you your which what when where who how "
    "does did its into than then also such one all any may will would should could there their them they these "
    "those only about used use using source sources"
)
STOPWORDS = frozenset(STOPWORD_TEXT.split())
FUNCTION_WORDS = frozenset(("a", "an", "as", "at", "be", "by", "do", "if", "in", "is", "it", "of", "on", "or", "to"))
YES_NO = re.compile(r"\s*(?:is|are|was|were|do|does|did|can|could|should|will|would|has|have|had|may|must)\b", re.I)
SEGMENT_END = re.compile(r"[.!?](?=\s)|\n")
SUPPORTED = 0.5  # share of a sentence's new words that a source must hold to back it
BACKING_MARGIN = 0.15  # a source this close to the best-backing one backs the sentence as well
META = re.compile(
    r"\b(sources?|mentioned|cited|refer(?:s|red)?|cover(?:s|ed)?|found in|information|provided|listed|described|"
    r"stated|according|see)\b",
    re.IGNORECASE,
)


REFUSAL_CUE = re.compile(
    r"\b(?:sources?|information|context|documents?|provided|mention(?:s|ed)?|sorry|unfortunately)\b", re.IGNORECASE
)
NEGATION = re.compile(r"\b(?:not|no|none|nothing|cannot)\b|n't\b", re.IGNORECASE)


def _first_sentence(text: str) -> tuple[str, bool]:
    """The first sentence of ``text`` and whether it is complete."""
    m = SEGMENT_END.search(text.strip())
    return (text.strip()[: m.end()], True) if m else (text.strip(), False)


def is_refusal(text: str) -> bool:
    """True when the answer opens by saying the sources hold no answer: its first sentence cites nothing, speaks
    of the sources (or apologises) and negates ("The provided sources do not cover it.").

    Example:
        >>> is_refusal("The sources do not cover how to do that.")
        True
        >>> is_refusal("Debian does not ship it; the sources say to build it [2].")
        False
    """
    first, _ = _first_sentence(text)
    return not MARKER.search(first) and bool(REFUSAL_CUE.search(first) and NEGATION.search(first))


def _may_be_refusal(text: str) -> bool:
    """While streaming: the first sentence could still turn out a refusal (so it is held back)."""
    first, complete = _first_sentence(text)
    if complete or MARKER.search(first):
        return is_refusal(first)
    return bool(REFUSAL_CUE.search(first) or NEGATION.search(first))


def content_words(text: str) -> set[str]:
    """Lower-case words that carry meaning: 3+ letters or any digit, no stop words."""
    return {
        w for w in WORD.findall(text.lower()) if (len(w) >= 3 or any(c.isdigit() for c in w)) and w not in STOPWORDS
    }


def backing_sources(scores: list[float]) -> list[int]:
    """The numbers of the sources that back a sentence (hold at least :data:`SUPPORTED` of its new words, and
    within :data:`BACKING_MARGIN` of the best), in the sources' order: the reranker's, best first.

    When several sources back a sentence as well, the one ranked highest for the question is the better citation:
    the 1.5B often copies a fact that two sources share and cites the one that merely mentions it (the ``dpkg-deb``
    entry of a command list instead of the FAQ answer that recommends it; bench/answers.py: gold cited 81% -> 89%).

    Example:
        >>> backing_sources([0.5, 1.0, 0.9, 0.2])
        [2, 3]
    """
    if not scores or max(scores) < SUPPORTED:
        return []
    top = max(scores)
    return [n for n, s in enumerate(scores, start=1) if s >= SUPPORTED and s >= top - BACKING_MARGIN]


class CitationChecker:
    """Checks each ``[n]`` the model writes against the sources, sentence by sentence, as the answer streams.

    Small models put the right fact next to the wrong number ("... is git-buildpackage [1]" when it came from
    [3]). A sentence's *new* words (not in the question) are looked up in each source as the model saw it; the
    sources that back the sentence (:func:`backing_sources`) replace its markers, highest-ranked first, as many
    as the model wrote, and a marker is dropped when no source (or no further one) backs the sentence. A marker
    alone (``[1]`` on its own line) is checked against the sentence before it; a marker past the sources given
    is dropped. An answer that cites nothing but is backed by a source gets that source at its end.

    Example:
        >>> c = CitationChecker("What is gbp?", ["sbuild builds in a chroot", "gbp is git-buildpackage"])
        >>> c.fix("gbp is the alias of git-buildpackage [1].") + c.finish()
        'gbp is the alias of git-buildpackage [2].'
    """

    def __init__(self, question: str, texts: list[str]) -> None:
        self.asked = content_words(question)
        self.sources = [content_words(t) for t in texts]
        self.cited: set[int] = set()
        self.last = ""  # the previous sentence with words in it
        self.best_overall = (0.0, 0)

    def support(self, sentence: str) -> list[float]:
        new = content_words(sentence) - self.asked
        if not new:
            return [0.0] * len(self.sources)
        return [len(new & words) / len(new) for words in self.sources]

    def fix(self, segment: str) -> str:
        """``segment`` (a sentence, or a run of markers) with its markers checked."""
        body = MARKER.sub("", segment)
        has_words = bool(content_words(body))
        scores = self.support(body if has_words else self.last)
        if has_words and MARKER.search(segment) and META.search(body) and max(scores, default=0) < SUPPORTED:
            # "The sources [1] and [2] provide information on this.": talk about the sources, not an answer
            has_words, scores = False, self.support(self.last)
            segment = " " + "".join(f"[{n}]" for n in MARKER.findall(segment))
        if has_words:
            self.last = body
        backing = backing_sources(scores)
        if backing and scores[backing[0] - 1] > self.best_overall[0]:
            self.best_overall = (scores[backing[0] - 1], backing[0])
        backers = iter(backing)

        def check(m: re.Match[str]) -> str:
            if not 1 <= int(m.group(1)) <= len(scores):
                return ""
            pick = next(backers, None)
            if pick is None:
                return ""
            self.cited.add(pick)
            return f"[{pick}]"

        fixed = MARKER.sub(check, segment)
        if not has_words and MARKER.search(segment):  # "[1], [2]" on its own: keep only the markers that stay
            lead = segment[: len(segment) - len(segment.lstrip())]
            return lead + "".join(f"[{n}]" for n in MARKER.findall(fixed))
        return re.sub(r" +([.,;:])", r"\1", re.sub(r"  +", " ", fixed))

    def finish(self) -> str:
        """What to append when the answer cited nothing although a source backs it."""
        score, n = self.best_overall
        if not self.cited and score >= SUPPORTED:
            self.cited.add(n)
            return f" [{n}]"
        return ""


def _segments(text: str, start: int, final: bool) -> tuple[list[str], int]:
    """Complete sentences of ``text`` from ``start`` (all of the rest when ``final``), and where they end."""
    out = []
    while m := SEGMENT_END.search(text, start):
        out.append(text[start : m.end()])
        start = m.end()
    if final and start < len(text):
        out.append(text[start:])
        start = len(text)
    return out, start


# ---------------------------------------------------------------- the extractive answer

# Not after "e.g." / "i.e." / "cf." / "vs.": the Debian FAQ's "remove them, e.g. by running aptitude clean." lost its
# answer to such a cut, in the snippet, the extractive answer and the refusal re-ask's quote.
SENTENCE_END = re.compile(r"(?<=[.!?;:])(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bcf\.)(?<!\bvs\.)\s+|\n\s*\n+")
LINE_WRAP = re.compile(r"[ \t]*\r?\n(?![ \t]*\r?\n)[ \t]*")


def split_sentences(text: str, min_words: int = 4, max_chars: int = 400) -> list[str]:
    r"""Sentences of a chunk that can stand alone as an answer; long ones are cut at ``max_chars``.

    A single line break is a PDF's line wrap, not the end of a sentence (only a blank line is).

    Example:
        >>> split_sentences("No Person shall be a Senator who\nshall be thirty. The next one is here.")
        ['No Person shall be a Senator who shall be thirty.', 'The next one is here.']
    """
    out = []
    for raw in SENTENCE_END.split(LINE_WRAP.sub(" ", text)):
        sentence = " ".join(raw.split())
        if len(sentence.split()) >= min_words:
            out.append(sentence[:max_chars])
    return out or [" ".join(text.split())[:max_chars]]


def best_sentences(question: str, hits: list[Hit], embedder: Embedder) -> list[str]:
    """The sentence of each hit that is most similar to the question (one encode call for all of them): the
    snippet a person reads under the answer, and the extractive answer for the top hit."""
    per_hit = [split_sentences(h.chunk.text) for h in hits]
    flat = [s for sentences in per_hit for s in sentences]
    if not flat:
        return []
    scores = embedder.encode_passages(flat) @ embedder.encode_queries([question])[0]
    out, start = [], 0
    for sentences in per_hit:
        part = scores[start : start + len(sentences)]
        out.append(sentences[int(np.argmax(part))])
        start += len(sentences)
    return out


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
EXTRACTIVE_REFUSED_NOTE = (
    "(Extractive answer: the passage of source [1] that best matches the question. The LLM said twice that the "
    "sources do not cover it; the reranker judged this source relevant.)"
)


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


def _guarded(result: Answer, llm: LLM, snippets: list[str], max_tokens: int, prompt_chars: int) -> Iterator[str]:
    """Stream the model's answer, sentence by sentence with checked citations (:class:`CitationChecker`), and
    show nothing until it is clearly an answer; on a degenerate answer ask once more, then fall back to the
    extractive answer.

    When the reranker judged source [1] relevant, a refusal ("the sources do not cover it") is held back and asked
    once more: small models refuse with the answer in front of them. A second refusal, or a second try that is no
    answer at all, falls back to the extractive answer, as above (the reranker vouches for its source), labelled
    with what the model said.
    """
    question, hits = result.question, result.hits
    labels = [h.chunk.label() for h in hits]
    texts = [focus(h.chunk.text, s, prompt_chars) for h, s in zip(hits, snippets, strict=True)]
    messages = build_messages(question, hits, texts)
    top_logit = hits[0].rerank_score
    for attempt in (1, 2):
        result.attempts = attempt
        hold = top_logit is not None and top_logit > RELEVANT_LOGIT
        checker = CitationChecker(question, texts)
        raw, done, ready, shown = "", 0, "", False
        for piece in llm.stream(messages, temperature=0, max_tokens=max_tokens):
            raw += piece
            segments, done = _segments(raw, done, final=False)
            ready += "".join(checker.fix(seg) for seg in segments)
            if not shown and ready and _clearly_an_answer(raw, question, labels):
                shown = not (hold and _may_be_refusal(raw))
            if shown and ready:
                yield ready
                ready = ""
        segments, done = _segments(raw, done, final=True)
        ready += "".join(checker.fix(seg) for seg in segments)
        # What would reach the user is judged too: a sentence that was only talk about its citations is gone.
        why = None if shown else degenerate_reason(raw, question, labels) or degenerate_reason(ready, question, labels)
        if why is None and hold and not shown and is_refusal(raw):
            log.info("answer attempt %d refused although the reranker judged source [1] relevant (logit %.1f): %r",
                     attempt, top_logit, raw[:80])
            result.rejected.append(REFUSED_RELEVANT)
            if attempt == 2:
                break
            messages = refusal_reask_messages(question, hits, snippets[0], texts)
            continue
        if why is None:
            yield ready.rstrip() + checker.finish()
            result.cited = sorted(checker.cited)
            return
        log.warning("answer attempt %d was %s: %r", attempt, why, raw[:80])
        result.rejected.append(why)
        messages = reask_messages(question, hits, raw, texts)
    result.mode, result.cited = "extractive", [1]
    refused = result.rejected[-1] == REFUSED_RELEVANT
    yield f"{snippets[0]} [1]\n\n{EXTRACTIVE_REFUSED_NOTE if refused else EXTRACTIVE_NOTE}"


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


def _retrieve(question: str, searcher: Searcher, k: int, min_score: float) -> tuple[Answer, list[str]]:
    """The sources for ``question`` and each one's best sentence, as an :class:`Answer` still without its text;
    below ``min_score`` an answer that says nothing relevant was found."""
    hits = searcher.search(question, k)
    if not hits or max(h.score for h in hits) < min_score:
        return Answer(question, [], iter([NO_CONTEXT]), found=False, mode="none"), []
    snippets = best_sentences(question, hits, searcher.embedder)
    sources = [source_dict(n, h, s) for n, (h, s) in enumerate(zip(hits, snippets, strict=True), 1)]
    return Answer(question, hits, iter(()), sources), snippets


def answer(
    question: str,
    searcher: Searcher,
    llm: LLM,
    k: int = 3,
    min_score: float = 0.25,
    max_tokens: int = 256,
    prompt_chars: int = PROMPT_CHARS,
) -> Answer:
    """Retrieve, then stream a grounded answer that is never empty or only markers (see :func:`_guarded`).

    Each source reaches the prompt as its best-matching ``prompt_chars`` (:func:`focus`). Below ``min_score`` no
    LLM call is made at all and the answer says plainly that nothing relevant was found.
    """
    result, snippets = _retrieve(question, searcher, k, min_score)
    if result.found:
        result.stream = _guarded(result, llm, snippets, max_tokens, prompt_chars)
    return result


def extractive_answer(question: str, searcher: Searcher, k: int = 3, min_score: float = 0.25) -> Answer:
    """The no-LLM baseline: the best-matching sentence of the top source, cited (bench/answers.py compares it)."""
    result, snippets = _retrieve(question, searcher, k, min_score)
    if result.found:
        result.stream, result.mode, result.cited = iter([f"{snippets[0]} [1]"]), "extractive", [1]
    return result
