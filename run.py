"""torchrun --nproc_per_node 1 run.py --output_dir archivesrag --model_name_or_path mixedbread-ai/mxbai-embed-large-v1 \
    --train_data query_minedHN.jsonl --learning_rate 1e-5 --fp16 --num_train_epochs 5 --per_device_train_batch_size 32 \
    --dataloader_drop_last True --normlized True --temperature 0.02 --query_max_len 64 --passage_max_len 256 \
    --train_group_size 2 --negatives_cross_device --logging_steps 10 --save_steps 1000 \
    --query_instruction_for_retrieval ""

Fine-tune an embedding model on mined query/positive/negative lines with the seed's flags (FlagEmbedding's
finetune.run), backed by sentence-transformers. Every Hugging Face TrainingArguments flag works too, including
--deepspeed ds_config.json and --gradient_checkpointing. On a CPU-only machine drop --fp16 (it is ignored with a
warning) or run plainly: python run.py ... . Rerunning the same command resumes from the last checkpoint.
"""

import sys

from archivesrag.errors import run_cli
from archivesrag.training import train


def main() -> None:
    train(sys.argv[1:])


if __name__ == "__main__":
    run_cli(main)
