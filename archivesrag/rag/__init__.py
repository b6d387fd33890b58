"""The RAG core shared by rag.py and the Gradio app: a safe persistent index (store), incremental ingest,
and retrieval + grounded answers with citations (chain)."""

from archivesrag.rag.chain import Answer, ArchivesRetriever, Hit, Searcher, answer
from archivesrag.rag.ingest import IngestReport, ingest
from archivesrag.rag.store import Chunk, IndexStore

__all__ = ["Answer", "ArchivesRetriever", "Chunk", "Hit", "IndexStore", "IngestReport", "Searcher", "answer", "ingest"]
