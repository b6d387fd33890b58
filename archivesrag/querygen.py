"""Synthetic query generation: one realistic search query per passage, from any LLM, checked and resumable.

For each passage the LLM gets the seed's prompt (verbatim, :data:`SEED_PROMPT`) and answers with JSON constrained
by :data:`QUERY_SCHEMA` through the backend's native structured output. Each answer is validated
(:func:`invalid_reason`): at least ``min_words`` words (the seed's guideline: 10), not a copy of the passage
(small local models paste the passage back when asked zero-shot, seen with Qwen2.5-0.5B; two worked examples
in the prompt fix most of it), not a repeat of an earlier query for the same passage, no junk (code, braces, prompt
fragments, chat preambles: :data:`JUNK`). Invalid answers are asked
again a bounded number of times, then the passage is skipped and counted.

``concurrency`` requests are in flight at once (asyncio). Lines are appended as they finish, each with the
passage's id, so the output order may differ from the input but a rerun after ``kill -9`` skips what is done.

We ask for ``{"query"}`` only, not the seed's ``{"query", "positive"}``: the positive is the passage we already
have, and making the model echo it costs hundreds of output tokens per query and invites copying.

Example:
    >>> stats = generate(QueryGenArgs(input_file="passages.jsonl", output_file="query.jsonl", llm="bundled"))
    >>> stats.written
    20
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from archivesrag.embedder import load_embedder
from archivesrag.errors import UserError
from archivesrag.llm import LLM, LLMError, LLMOutputError, default_llm_spec, get_llm, parse_spec
from archivesrag.records import (
    JsonlAppender,
    Passage,
    iter_jsonl,
    read_passages,
    read_queries,
    repair_torn_tail,
    write_jsonl,
)

log = logging.getLogger(__name__)

SEED_PROMPT = """You are a smart and helpful assistant. Your mission is to write one text retrieval example for this task in JSON format. The JSON object must contain the following keys:
"query": a string, a random user search query specified by the retrieval task.
"positive": This will be provided to you. It is a list of strings, each representing a positive example of a document that should be retrieved by the search query.

Please adhere to the following guidelines:
- The "query" should be a random user search query.
- The "query" should be paragraph-based, in at least 10 words, understandable with some effort or ambiguity, and diverse in topic.
- Query should be strongly related to the "positive" examples given to you.
- Your input will be just the text which is to be considered as the positive examples."""  # noqa: E501 - the seed's text, verbatim

FEW_SHOT: list[tuple[str, str]] = [
    (
        "The reading room is open to registered researchers from Monday to Friday, 9 a.m. to 5 p.m. Original "
        "materials must be requested at least two days in advance through the online catalogue.",
        "how far ahead do I need to order original documents before visiting the archive reading room",
    ),
    (
        "Email messages that document official business are public records and must be retained according to "
        "the approved retention schedule, regardless of the system used to send them.",
        "are work emails sent from a personal account considered public records that have to be kept",
    ),
]


def query_schema(min_words: int = 10) -> dict[str, Any]:
    """JSON schema of one answer. The length bounds are enforced by grammar-constrained backends (llama.cpp,
    Ollama): ``minLength`` (~5 characters a word) keeps small models from stopping at 6 words, ``maxLength``
    makes them close the string instead of rambling until ``max_tokens`` cuts the JSON in half."""
    return {
        "type": "object",
        "properties": {"query": {"type": "string", "minLength": max(1, 5 * min_words), "maxLength": 200}},
        "required": ["query"],
        "additionalProperties": False,
    }


QUERY_SCHEMA = query_schema()

WORD = re.compile(r"\w+")

# What a small model leaves after (or instead of) a query: code and template debris (seen from Qwen2.5-0.5B:
# ``... that we identified? }$python -c``), fragments of our own prompt, and chat preambles. A search request
# a person types has none of them; paths and commands (``/etc/apt/sources.list``, ``apt-get -t``) are fine.
JUNK = re.compile(
    r"[{}\[\]<>`\\]|\$\w*\s*python|python\s+-c|\bimport\s+\w+|\bdef\s+\w+\(|\w+\(\)|<\||\|>"
    r"|\"query\"|\bpositive\b|\bsearch query\b|\bthis text\b|\bat least \d+ words\b"
    r"|^(?:here is|here's|sure\b|query:|answer:|certainly|as an ai|i am an?\b|the query\b|the text\b)",
    re.IGNORECASE,
)

# Each user turn puts the passage under a one-line reminder of the task: small models follow the last
# instruction they read, and drift to paraphrasing or pasting the passage without it.
USER_TEMPLATE = "Text: {passage}\n\nWrite one search query of at least {min_words} words that this text answers."


@dataclass
class QueryGenArgs:
    """gen_query.py's flags (the seed's two, then ours)."""

    input_file: str
    output_file: str
    llm: str | None = None
    model: str | None = None
    queries_per_passage: int = 1
    concurrency: int = 4
    max_passages: int | None = None
    seed: int = 42
    prompt_file: str | None = None
    few_shot: bool | None = None  # None: see few_shot_by_default
    min_words: int = 10
    passage_max_chars: int = 1000  # what one index chunk holds (rag.py --chunk_size); 0: the whole passage
    max_attempts: int = 3
    temperature: float = 0.7
    max_tokens: int = 96
    timeout: float = 120.0
    max_retries: int = 3
    filter_model: str | None = None
    filter_top_k: int = 10
    easy_margin: float | None = None


@dataclass
class QueryGenStats:
    """Counts for the final summary line."""

    passages: int = 0
    already_done: int = 0
    written: int = 0
    retries: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def summary(self) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        text = (
            f"{self.written} queries written ({self.already_done} passages already done) from {self.passages} "
            f"passages; {self.retries} re-asks; skipped: {skipped}"
        )
        if self.filtered:
            text += "; dropped by filter: " + ", ".join(f"{k} {v}" for k, v in sorted(self.filtered.items()))
        if self.completion_tokens:
            text += f"; tokens: {self.prompt_tokens} prompt + {self.completion_tokens} completion"
        return text


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def copy_ratio(query: str, passage: str, n: int = 4) -> float:
    """Share of the query's word n-grams that also occur in the passage (1.0 = pasted from it).

    Keywords shared with the passage are expected in a good query; long runs of them are not.

    Example:
        >>> copy_ratio("the reading room is open to registered researchers", "The reading room is open to ...")
        0.6
    """
    q, p = words(query), words(passage)
    if len(q) < n:
        return 1.0 if " ".join(q) in " ".join(p) else 0.0
    grams = {tuple(q[i : i + n]) for i in range(len(q) - n + 1)}
    pgrams = {tuple(p[i : i + n]) for i in range(len(p) - n + 1)}
    return len(grams & pgrams) / len(grams)


def invalid_reason(
    query: str, passage: str, earlier: list[str], min_words: int, max_copy: float = 0.7, prompt: str = ""
) -> str | None:
    """Why a generated query is unusable (``None`` when it is fine); ``prompt`` is the text it was asked with,
    whose instructions a small model may echo."""
    if not query.strip():
        return "empty"
    if len(words(query)) < min_words:
        return "too_short"
    if copy_ratio(query, passage) > max_copy:
        return "copy_of_passage"
    if prompt and copy_ratio(query, prompt.replace(passage, " ")) > max_copy:
        return "copy_of_prompt"
    if " ".join(words(query)) in {" ".join(words(e)) for e in earlier}:
        return "duplicate"
    if JUNK.search(query):
        return "junk"
    return None


def embeddable_part(text: str, max_chars: int) -> str:
    """The start of a passage, about as much as the embedder reads of it, cut at a word boundary.

    A query about text past the model's window (256 tokens for all-MiniLM-L6-v2, about 1,000 characters of
    English technical prose) teaches it to match words it never sees: in the Securing Debian Manual 144 of 247
    sections are longer than that. Shorter prompts are also faster to read on a CPU. ``max_chars`` 0 keeps it all.

    Example:
        >>> embeddable_part("one two three four", 9)
        'one two'
    """
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    cut = text[: max_chars + 1]
    return cut[: cut.rfind(" ")].rstrip() if " " in cut else cut[:max_chars]


def build_messages(passage: str, system: str, few_shot: bool, min_words: int = 10) -> list[dict[str, str]]:
    """The chat for one passage: the seed prompt as system, optional worked examples, then the passage."""
    msgs = [{"role": "system", "content": system}]
    if few_shot:
        for text, query in FEW_SHOT:
            msgs += [
                {"role": "user", "content": USER_TEMPLATE.format(passage=text, min_words=min_words)},
                {"role": "assistant", "content": json.dumps({"query": query})},
            ]
    return [*msgs, {"role": "user", "content": USER_TEMPLATE.format(passage=passage, min_words=min_words)}]


def few_shot_by_default(spec: str, model: str | None = None) -> bool:
    """Worked examples for every LLM except OpenAI's own API.

    Small models (Ollama, the bundled GGUF, a llama.cpp/vLLM server behind an OpenAI-compatible URL) paste the
    passage back when asked zero-shot; GPT-4o does not, and would pay for the examples' tokens on every call.

    Example:
        >>> few_shot_by_default("http://127.0.0.1:8080/v1"), few_shot_by_default("openai:gpt-4o")
        (True, False)
    """
    parsed = parse_spec(spec, model)
    if parsed.backend != "openai":
        return True
    host = urlparse(parsed.base_url).hostname if parsed.base_url else "api.openai.com"
    return not (host or "").endswith("openai.com")


def select_passages(passages: list[Passage], max_passages: int | None, seed: int) -> list[Passage]:
    """Unique passages (by key), or a seeded sample of ``max_passages`` of them."""
    unique = list({p.key: p for p in passages}.values())
    if max_passages is not None and max_passages < len(unique):
        order = {p.key: i for i, p in enumerate(unique)}
        unique = sorted(random.Random(seed).sample(unique, max_passages), key=lambda p: order[p.key])
    return unique


def existing_queries(path: Path) -> dict[str, list[str]]:
    """Queries already written per passage id (after repairing a torn tail)."""
    done: dict[str, list[str]] = {}
    if path.exists():
        repair_torn_tail(path)
        for _, obj in iter_jsonl(path):
            done.setdefault(str(obj.get("id")), []).append(str(obj.get("query", "")))
    return done


class QueryGenerator:
    """Generates, validates and writes queries for many passages with bounded concurrency."""

    def __init__(self, llm: LLM, args: QueryGenArgs, system: str, few_shot: bool) -> None:
        self.llm = llm
        self.args = args
        self.system = system
        self.few_shot = few_shot
        self.stats = QueryGenStats()
        self.schema = query_schema(args.min_words)

    async def one(self, p: Passage, earlier: list[str], rng: random.Random) -> tuple[str | None, str | None]:
        """Ask until a valid query comes back; return (query, None) or (None, skip reason).

        Each attempt samples with a new seed; answers that copy the prompt's own words are rejected too.
        """
        text = embeddable_part(p.text, self.args.passage_max_chars)
        msgs = build_messages(text, self.system, self.few_shot, self.args.min_words)
        reason = None
        for attempt in range(self.args.max_attempts):
            if attempt:
                self.stats.retries += 1
            try:
                obj = await self.llm.achat_json(
                    msgs,
                    self.schema,
                    temperature=self.args.temperature,
                    max_tokens=self.args.max_tokens,
                    seed=rng.randrange(2**31),
                )
            except LLMError as err:
                log.warning("passage %s: %s", p.key, err)
                reason = "bad_json" if isinstance(err, LLMOutputError) else "llm_error"
                continue
            query = " ".join(str(obj["query"]).split())
            reason = invalid_reason(query, text, earlier, self.args.min_words, prompt=msgs[-1]["content"])
            if reason is None:
                return query, None
        return None, reason

    async def run(self, todo: list[tuple[Passage, int, list[str]]], out: JsonlAppender) -> None:
        from tqdm import tqdm

        sem = asyncio.Semaphore(self.args.concurrency)
        bar = tqdm(total=sum(n for _, n, _ in todo), desc="queries", unit="q")

        async def work(p: Passage, needed: int, earlier: list[str]) -> None:
            rng = random.Random(f"{self.args.seed}:{p.key}:{len(earlier)}")
            async with sem:
                for _ in range(needed):
                    query, reason = await self.one(p, earlier, rng)
                    if query is None:
                        self.stats.skipped[reason or "invalid"] += 1
                    else:
                        earlier.append(query)
                        out.write({"id": p.key, "query": query, "positive": [p.text]})
                        self.stats.written += 1
                    bar.update(1)
                    bar.set_postfix(skipped=sum(self.stats.skipped.values()), refresh=False)

        try:
            await asyncio.gather(*(work(p, n, e) for p, n, e in todo))
        finally:
            bar.close()


def filter_queries(raw_path: Path, out_path: Path, args: QueryGenArgs) -> Counter[str]:
    """Round-trip quality filter over generated queries; writes the kept ones to ``out_path`` atomically.

    * consistency (Promptagator): drop a query whose passage is not in the top ``filter_top_k`` of all
      generated-for passages under ``filter_model``: the query does not really point at its passage;
    * easiness (NeMo Curator), only with ``easy_margin``: drop a query whose passage ranks first by more than
      ``easy_margin`` over the runner-up: it teaches the model nothing.

    Returns:
        how many were dropped, by reason.
    """
    import numpy as np

    rows = read_queries(raw_path)
    texts = list(dict.fromkeys(r.positive[0] for r in rows))
    emb = load_embedder(args.filter_model)
    scores = emb.encode_queries([r.query for r in rows], show_progress=True) @ emb.encode_passages(texts).T
    where = {t: i for i, t in enumerate(texts)}
    dropped: Counter[str] = Counter()
    kept = []
    for row, s in zip(rows, scores, strict=True):
        own = s[where[row.positive[0]]]
        rank = int(np.sum(s > own))
        runner_up = float(np.max(np.delete(s, where[row.positive[0]]))) if len(texts) > 1 else -1.0
        if rank >= args.filter_top_k:
            dropped["not_in_top_k"] += 1
        elif args.easy_margin is not None and rank == 0 and own - runner_up > args.easy_margin:
            dropped["too_easy"] += 1
        else:
            kept.append(row)
    write_jsonl(out_path, kept)
    log.info("filter with %s: kept %d of %d queries", args.filter_model, len(kept), len(rows))
    return dropped


def generate(args: QueryGenArgs, llm: LLM | None = None) -> QueryGenStats:
    """Run the whole stage (see module docstring). Returns the counts it also logs."""
    if args.queries_per_passage < 1 or args.concurrency < 1 or args.max_attempts < 1:
        raise UserError("--queries_per_passage, --concurrency and --max_attempts must be at least 1")
    if args.passage_max_chars < 0:
        raise UserError(f"--passage_max_chars {args.passage_max_chars}: give 0 (the whole passage) or more")
    system = SEED_PROMPT
    if args.prompt_file:
        path = Path(args.prompt_file)
        if not path.is_file():
            raise UserError(f"{path}: no such prompt file")
        system = path.read_text(encoding="utf-8").strip()
    passages = select_passages(read_passages(args.input_file), args.max_passages, args.seed)

    # Queries stay with the 0.5B: 2.5x faster than the 1.5B that answers questions, and no measurement here yet
    # shows the 1.5B's queries train a better embedder (issue 15).
    spec = args.llm or default_llm_spec(prefer_openai=True, bundled="0.5b")
    few_shot = args.few_shot if args.few_shot is not None else few_shot_by_default(spec, args.model)
    if llm is None:
        llm = get_llm(
            spec,
            args.model,
            timeout=args.timeout,
            max_retries=args.max_retries,
            n_parallel=args.concurrency,
            n_ctx=4096,
        )
    llm.check()

    raw_path = Path(args.output_file)
    if args.filter_model:
        raw_path = raw_path.with_name(raw_path.stem + ".unfiltered.jsonl")
    done = existing_queries(raw_path)
    todo = []
    gen = QueryGenerator(llm, args, system, few_shot)
    gen.stats.passages = len(passages)
    for p in passages:
        have = done.get(p.key, [])
        if len(have) >= args.queries_per_passage:
            gen.stats.already_done += 1
        else:
            todo.append((p, args.queries_per_passage - len(have), list(have)))
    log.info("LLM %s; %d passages, %d to do; few-shot %s", llm, len(passages), len(todo), "on" if few_shot else "off")
    with JsonlAppender(raw_path) as out:
        asyncio.run(gen.run(todo, out))
    gen.stats.prompt_tokens = llm.usage.prompt_tokens
    gen.stats.completion_tokens = llm.usage.completion_tokens
    if args.filter_model:
        gen.stats.filtered = filter_queries(raw_path, Path(args.output_file), args)
    log.info("gen_query: %s", gen.stats.summary())
    return gen.stats
