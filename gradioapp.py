"""python gradioapp.py --model llama3 --embedding_model ./archivesrag --data_path ./pdfs

Chat with your documents in the browser: indexes --data_path (incrementally, so restarts are instant), then
serves a chat whose answers cite numbered, clickable sources, with PDF upload on the fly. With no flags it serves
the sample documents in data/sample with the bundled embedder and Ollama's llama3 when Ollama answers, else the
bundled GGUF LLM. Binds 127.0.0.1 unless --host says otherwise; --share makes a public link (set --auth).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from archivesrag.app import AppSettings, Engine, launch
from archivesrag.errors import run_cli

SAMPLE = Path(__file__).resolve().parent / "data" / "sample"


def parse_args() -> AppSettings:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="LLM: an Ollama model name (llama3) or any spec: ollama:M, openai:M, "
                    "http://HOST:PORT/v1, gguf:PATH, bundled (default: Ollama llama3 if it answers, else bundled)")
    ap.add_argument("--embedding_model", help="run.py output dir, HF id or 'bundled' (default: the seed's mxbai "
                    "model when available, else bundled all-MiniLM-L6-v2)")
    ap.add_argument("--data_path", default=str(SAMPLE), help="folder of PDFs (and .jsonl/.txt/.md/.html) to index")
    ap.add_argument("--index", help="index folder (default: DATA_PATH/.archivesrag-index)")
    ap.add_argument("--host", default="127.0.0.1", help="interface to bind; 0.0.0.0 exposes it to your network")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--share", action="store_true", help="public *.gradio.live link (needs internet; use --auth)")
    ap.add_argument("--auth", help="user:password, or a file with one user:password per line")
    ap.add_argument("--max_file_size", type=float, default=50.0, help="upload limit in MB")
    ap.add_argument("--top_k", type=int, default=3, help="sources per answer (changeable in the UI)")
    ap.add_argument("--hybrid", action=argparse.BooleanOptionalAction, default=True,
                    help="start with hybrid BM25 + dense search on (the default; --no-hybrid: dense only)")
    ap.add_argument("--rerank_model", default="bundled", help="cross-encoder that reorders the sources: 'bundled' "
                    "(ms-marco-MiniLM-L-12-v2 ONNX), a CrossEncoder dir or HF id, or 'none'")
    ap.add_argument("--ocr", choices=["auto", "off", "force"], default="auto",
                    help="PDF pages without a text layer: read by OCR (auto), skip (off), OCR every page (force)")
    ap.add_argument("--min_score", type=float, default=0.25, help="below this cosine, say nothing was found")
    a = ap.parse_args()
    return AppSettings(
        data_path=a.data_path, model=a.model, embedding_model=a.embedding_model, index=a.index, host=a.host,
        port=a.port, share=a.share, auth=a.auth, max_file_size_mb=a.max_file_size, top_k=a.top_k, hybrid=a.hybrid,
        rerank_model=None if a.rerank_model.lower() in ("none", "") else a.rerank_model, ocr=a.ocr,
        min_score=a.min_score,
    )


def main() -> None:
    settings = parse_args()
    engine = Engine.start(settings)
    engine.ingest_data_path()
    launch(engine)


if __name__ == "__main__":
    run_cli(main)
