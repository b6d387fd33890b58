"""Retrieval: a question -> ranked chunks of one index.

:class:`Searcher` takes dense top-k from the index, optionally fused with BM25 (bm25s) by reciprocal rank fusion,
diversified with MMR, or reordered by a cross-encoder. :class:`ArchivesRetriever` exposes it as a LangChain
``BaseRetriever`` for users' own chains.

Example:
    >>> store = IndexStore.open("my-index")  # doctest: +SKIP
    >>> searcher = Searcher(store, load_embedder("bundled"), hybrid=True, rerank_model="bundled")  # doctest: +SKIP
    >>> [h.chunk.label() for h in searcher.search("Who can propose amendments?", k=3)]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from archivesrag.embedder import Embedder
from archivesrag.rag.store import Chunk, IndexStore
from archivesrag.reranker import Reranker, load_reranker

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

    def _fused(self, query: str, dense: list[int]) -> list[int]:
        """Dense and BM25 rankings fused (reciprocal rank), the best ``fetch_k``; with a reranker, followed by the
        dense candidates the fusion pushed out, so BM25 never hides a passage from the cross-encoder that it would
        have judged without hybrid search.

        Why: asked "How many points does gnuplot sample functions at by default?", the gnuplot manual's answer was
        the embedder's 28th candidate and not among BM25's 30; fused, it fell below 30th and the cross-encoder, which
        ranks it first when shown it, never saw it. Over bench/answers.py's 263 questions: gold source in the top 3
        260 -> 261, first 248 -> 249, none lost; about 10 more passages to score, search p50 1.13 -> 1.44 s here.
        """
        fused: dict[int, float] = {}
        for ranking in (dense, self._bm25_ranking(query, self.fetch_k)):
            for r, i in enumerate(ranking):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + r + 1)
        top = sorted(fused, key=fused.__getitem__, reverse=True)[: self.fetch_k]
        if self.reranker is None:
            return top
        kept = set(top)
        return top + [i for i in dense if i not in kept]

    def search(self, query: str, k: int = 4) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first, each with its cosine score."""
        qv = self.embedder.encode_queries([query])[0]
        wide = self.hybrid or self.mmr or self.reranker is not None
        dense = self.store.search(qv, self.fetch_k if wide else k)
        ranked = [i for i, _ in dense]
        if self.hybrid:
            ranked = self._fused(query, ranked)
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
