"""The prompt: numbered sources, the rules, the question, and the two re-asks.

Shaped for small models: the sources first, then the instruction, the question last (small models follow what
they read last), asking for a sentence that states the answer before its citations.
"""

from __future__ import annotations

from archivesrag.rag.search import Hit

SYSTEM_PROMPT = "You answer questions from the numbered sources you are given, and from nothing else."
ANSWER_RULES = (
    "Answer the question below from these sources. Write one or two sentences that state the answer in the words "
    "of the sources, then the number of the source you used in square brackets, like [1]. Only if no source "
    "answers the question, say that the sources do not cover it."
)
REASK = (
    'That was not an answer. Write a full sentence that answers the question "{question}" with the facts from '
    "the sources, then the source number in square brackets."
)
REASK_REFUSAL = (
    'Source [{n}] looks relevant to this question. Its closest sentence is: "{sentence}" If that answers the '
    "question, write the answer in a full sentence, then [{n}]; only if it does not, say that the sources do not "
    "cover it."
)


def build_messages(
    question: str, hits: list[Hit], texts: list[str] | None = None, hint: str = ""
) -> list[dict[str, str]]:
    """The prompt, shaped for small models: the sources first, then the instruction, the question last (small
    models follow what they read last), asking for a sentence that states the answer before its citations.

    ``texts`` replaces the chunks' text (see :func:`focus`): prompt evaluation is most of the wait on a CPU.
    ``hint`` (ending in a blank line) goes just before the question.
    """
    texts = texts or [h.chunk.text for h in hits]
    sources = "\n\n".join(
        f"[{n}] ({h.chunk.label()})\n{text}" for n, (h, text) in enumerate(zip(hits, texts, strict=True), start=1)
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Sources:\n\n{sources}\n\n{ANSWER_RULES}\n\n{hint}Question: {question}"},
    ]


def reask_messages(question: str, hits: list[Hit], bad: str, texts: list[str] | None = None) -> list[dict[str, str]]:
    """A second try after a degenerate answer: the first turn, the bad answer, and a plain correction."""
    return [
        *build_messages(question, hits, texts),
        {"role": "assistant", "content": bad},
        {"role": "user", "content": REASK.format(question=question)},
    ]


def refusal_reask_messages(
    question: str, hits: list[Hit], sentence: str, texts: list[str] | None = None, n: int = 1
) -> list[dict[str, str]]:
    """A second try after "the sources do not cover it" although the reranker judged source [1] relevant: the
    first prompt with a hint before the question that quotes source [``n``]'s closest ``sentence``. The
    refusal itself is left out: shown its own refusal, a small model repeats it."""
    hint = REASK_REFUSAL.format(n=n, sentence=sentence)
    return build_messages(question, hits, texts, hint=hint + "\n\n")
