"""python mine_hn.py --model_name_or_path BAAI/bge-base-en-v1.5 --input_file query.jsonl \
    --output_file query_minedHN.jsonl --range_for_sampling 2-200 --negative_number 15 [--use_gpu_for_searching]

Mine hard negatives for fine-tuning: the seed's flags (FlagEmbedding's hn_mine), backed by sentence-transformers
and faiss. Recommended on real data: --relative_margin 0.05 (drops likely false negatives). All flags: --help.
"""

from transformers import HfArgumentParser

from archivesrag.errors import run_cli
from archivesrag.mining import MiningArgs, mine


def main() -> None:
    (args,) = HfArgumentParser(MiningArgs).parse_args_into_dataclasses()
    mine(args)


if __name__ == "__main__":
    run_cli(main)
