"""Retrieval and grounded answers with citations.

:class:`Searcher` finds chunks for a question: dense top-k from the index, optionally fused with BM25 (bm25s) by
reciprocal rank fusion, diversified with MMR, or reordered by a cross-encoder. :class:`ArchivesRetriever` exposes
it as a LangChain ``BaseRetriever`` for users' own chains. :func:`answer` builds a prompt with numbered sources,
streams the LLM's answer, and returns the sources its ``[n]`` markers refer to; when the best match scores below
``min_score`` it says nothing relevant was found instead of letting the model guess.

Example:
    >>> searcher = Searcher(IndexStore.open("my-index"), load_embedder("bundled"), hybrid=True)
    >>> result = answer("Who can propose amendments?", searcher, get_llm("bundled"))
    >>> print("".join(result.stream)); print(result.sources[0]["label"])
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You answer questions about a document collection using only the numbered sources given with the question. "
    "Cite the sources you use with their numbers in square brackets, like [1] or [2][3]. If the sources do not "
    "contain the answer, say that you do not know. Be concise."
)
NO_CONTEXT = "I could not find anything relevant to that question in the indexed documents."
RRF_K = 60  # the constant of Cormack et al.'s reciprocal rank fusion


@dataclass
class Hit:
    """A retrieved chunk and its cosine similarity to the question."""

    chunk: Chunk
    score: float


class Searcher:
    """Question -> ranked chunks, over one :class:`IndexStore`.

    Args:
        store: the index.
        embedder: must be the model that built the index.
        hybrid: fuse dense and BM25 rankings (helps with names, codes, rare words).
        mmr: maximal marginal relevance over the candidates (fewer near-duplicate chunks).
        rerank_model: path or id of a sentence-transformers CrossEncoder to reorder candidates.
        fetch_k: candidates taken before fusion/MMR/rerank.
    """

    def __init__(
        self,
        store: IndexStore,
        embedder: Embedder,
        hybrid: bool = False,
        mmr: bool = False,
        rerank_model: str | None = None,
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
        self._reranker = None
        if rerank_model:
            from sentence_transformers import CrossEncoder

            from archivesrag.embedder import resolve_model

            self._reranker = CrossEncoder(resolve_model(rerank_model))

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
        wide = self.hybrid or self.mmr or self._reranker is not None
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
        if self._reranker is not None and chunks:
            order = np.argsort(-self._reranker.predict([(query, c.text) for c in chunks]))
            chunks = [chunks[i] for i in order]
        return [Hit(c, float(scores[c.id])) for c in chunks[:k]]


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


def build_messages(question: str, hits: list[Hit]) -> list[dict[str, str]]:
    """System prompt + one user turn holding the numbered sources and the question."""
    sources = "\n\n".join(f"[{n}] ({h.chunk.label()})\n{h.chunk.text}" for n, h in enumerate(hits, start=1))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question}"},
    ]


@dataclass
class Answer:
    """An answer in the making: iterate ``stream`` for its text; ``sources`` are numbered as in the text."""

    question: str
    hits: list[Hit]
    stream: Iterator[str]
    sources: list[dict[str, Any]] = field(default_factory=list)
    found: bool = True


def answer(
    question: str, searcher: Searcher, llm: LLM, k: int = 4, min_score: float = 0.25, max_tokens: int = 512
) -> Answer:
    """Retrieve, then stream a grounded answer; below ``min_score`` no LLM call is made at all."""
    hits = searcher.search(question, k)
    if not hits or max(h.score for h in hits) < min_score:
        return Answer(question, [], iter([NO_CONTEXT]), found=False)
    sources = [
        {
            "n": n,
            "label": h.chunk.label(),
            "source": h.chunk.source,
            "page": h.chunk.page,
            "url": h.chunk.url,
            "title": h.chunk.title,
            "score": round(h.score, 4),
        }
        for n, h in enumerate(hits, start=1)
    ]
    stream = llm.stream(build_messages(question, hits), temperature=0, max_tokens=max_tokens)
    return Answer(question, hits, stream, sources)
