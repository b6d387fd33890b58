"""ArchivesRAG: a website or a folder of PDFs -> a RAG chat with a domain-fine-tuned embedding model.

Shared modules: :mod:`archivesrag.records` (JSONL contracts), :mod:`archivesrag.embedder`,
:mod:`archivesrag.llm`, :mod:`archivesrag.errors`. Each pipeline stage has its own module.
"""

__version__ = "0.1.0"
