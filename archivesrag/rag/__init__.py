"""The RAG core shared by rag.py and the Gradio app: a safe persistent index (store), incremental ingest,
retrieval (search), and grounded answers with citations (chain: the prompt, the checks of what the model wrote)."""

from archivesrag.rag.chain import Answer, answer
from archivesrag.rag.ingest import IngestReport, ingest
from archivesrag.rag.search import ArchivesRetriever, Hit, Searcher
from archivesrag.rag.store import Chunk, IndexStore

__all__ = ["Answer", "ArchivesRetriever", "Chunk", "Hit", "IndexStore", "IngestReport", "Searcher", "answer", "ingest"]
