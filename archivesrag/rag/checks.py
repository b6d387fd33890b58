"""Checking what the model wrote, before a person reads it: non-answers, refusals, and citations.

:func:`degenerate_reason` says why an answer is no answer (empty, only ``[n]`` markers, an echo, a pointer that
adds nothing to the question); :func:`is_refusal` recognises "the sources do not cover it"; the
:class:`CitationChecker` moves, or drops, each ``[n]`` to the sources that back its sentence, as the answer streams.
"""

from __future__ import annotations

import re

from archivesrag.rag.prompt import ANSWER_RULES

MARKER = re.compile(r"\[\s*(\d+)\s*\]")
ANY_MARKERS = re.compile(r"\[[\d\s,;–-]*\]")
OPEN_MARKER = re.compile(r"\[[\d\s,;–-]*$")  # a marker the model began but never closed: " [3"
WORD = re.compile(r"[^\W_]+")
# A command-line option or a call, kept whole: "--no-save", "-b", "pdf()", "is.na()". Its letters alone may be an
# ordinary word of the question ("Which function produces a PDF file?" -> "pdf()"), and then the answer would look
# like it adds nothing (bench/answers.py, An Introduction to R: "…is `pdf()`." was judged a restatement and left
# without a citation).
CODE = re.compile(r"(?<![\w-])--?[A-Za-z][\w.-]*[\w]|(?<![\w-])-[A-Za-z]\b|\b[A-Za-z_][\w.]*\(\)")
# A compound name, kept whole beside its parts: "git-daemon-export-ok", "refs/notes/commits", "tar.umask". Its parts
# may all be the question's own words ("Which magic file must a repository hold for git daemon to export it?"), and
# then the answer seemed to add nothing a source could back: the right answer lost its only citation
# (bench/answers.py, the Git pages; replayed on 430 recorded answers: gold cited 399 -> 401, wrong cites 12 -> 12).
COMPOUND = re.compile(r"(?<![\w-])[A-Za-z_]\w*(?:[-./@][\w{}]+)+")
# A number written with its unit, whose number counts as a word of its own too: "10s" holds "10". Postfix lists
# "trigger_timeout (10s)"; the 1.5B answered "is 10 seconds", and the source it had it from was judged to hold none of
# its new words, so the marker went to another source that merely said "seconds" (bench/answers.py, the Postfix pages).
QUANTITY = re.compile(r"\b(\d+(?:\.\d+)?)[a-z]+\b")
PROMPT_ECHO = ("sources:", "question:", ANSWER_RULES[:40].lower())
HOLD_WORDS = 4  # words of real text an answer must show before it is streamed to the user
PARTIAL_WORD = re.compile(r"[\w-]+$")  # the end of a streamed text that may be the start of a longer word


def _norm(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def _strip_labels(text: str, labels: list[str]) -> str:
    """The answer without citation markers and without the sources' labels (``[2] (file.pdf, page 7)``)."""
    text = OPEN_MARKER.sub(" ", ANY_MARKERS.sub(" ", text))
    for label in labels:
        text = text.replace(label, " ")
    return re.sub(r"(?<!\w)\(\s*[,;.\s]*\)", " ", text)  # the parentheses a label left, not a call's "()"


def degenerate_reason(text: str, question: str, labels: list[str]) -> str | None:
    """Why an answer is no answer, or None when it is one.

    Degenerate: empty; only ``[n]`` markers (with or without the sources' labels); the question repeated; a piece
    of the prompt repeated; a pointer that adds no word to the question's ("The command that finalizes
    debian/changelog is [3]."). A short real answer ("Congress.", "-b [1]") is not degenerate.

    Example:
        >>> degenerate_reason("[1] (a.pdf, page 2)", "Who?", ["a.pdf, page 2"])
        'only citation markers'
        >>> degenerate_reason("Congress declares war [1].", "Who declares war?", []) is None
        True
        >>> degenerate_reason("The site that serves updates is [2].", "Which site serves updates?", [])
        'nothing beyond the question'
    """
    if not text.strip():
        return "empty"
    stripped = _strip_labels(text, labels)
    body = _norm(stripped)
    if not body:
        return "only citation markers"
    q = _norm(question)
    if body == q or (len(body) >= 12 and q.startswith(body)):
        return "an echo of the question"
    low = text.strip().lower()
    if any(low.startswith(p) for p in PROMPT_ECHO) or ANSWER_RULES[:40].lower() in low:
        return "an echo of the prompt"
    if only_restates(stripped, question):  # un-normalised: "pdf()" and "--no-save" keep their marks
        return "nothing beyond the question"
    if is_pointer(text):
        return "a citation where the answer should be"
    return None


# The marker stands where the answer should be: "The command to show the package name … is [2]." (the 1.5B, its
# words not quite the question's "shows", so it is no restatement; without its marker it read "… file is.").
MARKER_AS_ANSWER = re.compile(r"\b(?:is|are|was|were|be|called|named)\s*(?:\[[\d\s,;–-]*\]\s*)+[.!]?\s*$", re.I)


def is_pointer(text: str) -> bool:
    """Every sentence with words ends on a copula followed by its markers: the answer points at a source instead of
    stating what it says.

    Example:
        >>> is_pointer("The command to show the name of a .deb file is [2].")
        True
        >>> is_pointer("The command is dpkg-deb [2].") or is_pointer("It is [1]. The tool is dpkg-deb [1].")
        False
    """
    sentences = [s.strip() for s in complete_segments(text, 0, True)[0] if content_words(MARKER.sub(" ", s))]
    return bool(sentences) and all(MARKER_AS_ANSWER.search(s) for s in sentences)


def only_restates(answer: str, question: str) -> bool:
    """The answer adds no word to a wh-question's but function words ("The site that serves updates is [2]."). A
    yes/no question may be answered by restating it, and short words count ("-b", "3").

    Example:
        >>> only_restates("The stable release does not get new features.", "Does the stable release get new features?")
        False
        >>> only_restates("The function that produces a PDF file is `pdf()`.", "Which function produces a PDF file?")
        False
        >>> only_restates("It is a VIRTUAL column.", "If it says neither VIRTUAL nor STORED, which kind is it?")
        False
        >>> degenerate_reason("The kind it is is [1].", "If it says neither VIRTUAL nor STORED, which kind is it?", [])
        'nothing beyond the question'
        >>> only_restates("The INTO clause writes a new file.", "Which clause writes a new file?")
        False
    """
    if YES_NO.match(question):
        return False
    if CHOICE.search(question) and not EMPTY_SLOT.search(ANY_MARKERS.sub(" ", answer)):
        return False  # "…neither VIRTUAL nor STORED, which kind is it?" -> "It is a VIRTUAL column."
    new = _words(answer) - _words(question)
    keywords = {w.lower() for w in KEYWORD.findall(answer)}  # "The INTO clause …": an SQL keyword, not a stop word
    return not new - ((STOPWORDS | FUNCTION_WORDS) - keywords)


def _words(text: str) -> set[str]:
    """Lower-case words, and options and calls whole (:data:`CODE`)."""
    low = text.lower()
    return set(WORD.findall(low)) | set(CODE.findall(low))


def _before_open_parenthesis(text: str) -> str:
    """``text`` up to its first parenthesis still open: a source's label the model is still writing.

    Example:
        >>> _before_open_parenthesis("The option is (Quirks › 8. Literals (http://x/q")
        'The option is '
    """
    opened: list[int] = []
    for i, ch in enumerate(text):
        if ch == "(":
            opened.append(i)
        elif ch == ")" and opened:
            opened.pop()
    return text[: opened[0]] if opened else text


def clearly_an_answer(text: str, question: str, labels: list[str]) -> bool:
    """True once the start of a streamed answer can no longer turn out degenerate (then it is shown). Words inside
    a parenthesis not yet closed do not count: the 0.5B on the SQLite pages wrote "…by default is (Quirks, Caveats,
    and Gotchas In SQLite › 8. … (http://…/quirks.html))." — a pointer, once the label is complete and set aside.
    Nor does a word still arriving: "The command must h" is not yet "have", one of the question's words (the 1.5B
    on the CMake pages restated its question whole, and the "h" had let it through). Nor do words that talk about
    the sources (:data:`META`): the next time, the restatement went on "This is stated in [1]." and "stated" let it
    through; the checker then made that sentence a bare marker, so what the user read was the question restated."""
    text = PARTIAL_WORD.sub("", text)
    stripped = _strip_labels(_before_open_parenthesis(text), labels)
    body = _norm(stripped)
    if len(body.split()) < HOLD_WORDS or _norm(question).startswith(body):
        return False
    if only_restates(META.sub(" ", stripped), question):
        return False
    if is_pointer(text):
        return False
    low = text.strip().lower()
    return not any(p.startswith(low[: len(p)]) or low.startswith(p) for p in PROMPT_ECHO)


STOPWORD_TEXT = (
    "the and for with that this from are was were has have had not but can you your which what when where who how "
    "does did its into than then also such one all any may will would should could there their them they these "
    "those only about used use using source sources"
)
STOPWORDS = frozenset(STOPWORD_TEXT.split())
FUNCTION_WORDS = frozenset(("a", "an", "as", "at", "be", "by", "do", "if", "in", "is", "it", "of", "on", "or", "to"))
# A question that offers its own answers ("VIRTUAL or STORED"): an answer names one of them, in the question's words.
CHOICE = re.compile(r"\b(?:or|nor|either|whether)\b", re.IGNORECASE)
KEYWORD = re.compile(r"\b[A-Z]{2,}\b")  # written in capitals: a keyword or a name ("INTO", "AS"), never a stop word
YES_NO = re.compile(r"\s*(?:is|are|was|were|do|does|did|can|could|should|will|would|has|have|had|may|must)\b", re.I)
SEGMENT_END = re.compile(r"[.!?](?=\s)|\n")
SUPPORTED = 0.5  # share of a sentence's new words that a source must hold to back it
OWN_SUPPORTED = 1 / 3  # ... to keep the model's own marker, when it names the one source that backs it best
BACKING_MARGIN = 0.15  # a source this close to the best-backing one backs the sentence as well
META = re.compile(
    r"\b(sources?|mentioned|cited|refer(?:s|red)?|cover(?:s|ed)?|found in|information|provided|listed|described|"
    r"stated|according|see)\b",
    re.IGNORECASE,
)
# A sentence left hanging on a preposition once its markers are gone pointed at them: "This is specified in [1]."
# (the 1.5B on the Nettle Manual) would read "This is specified in." without them.
POINTING_WORDS = "in|on|from|at|by|under|see"
POINTS_AT_MARKER = re.compile(rf"\b(?:{POINTING_WORDS})\s*[.!?]?\s*$", re.IGNORECASE)
# An answer that stops where its answer should be: "The kind it is is [1]." (copulas too, beside the above).
EMPTY_SLOT = re.compile(rf"\b(?:is|are|was|were|be|called|named|{POINTING_WORDS})\W*$", re.IGNORECASE)


REFUSAL_CUE = re.compile(
    r"\b(?:sources?|information|context|documents?|provided|mention(?:s|ed)?|sorry|unfortunately)\b", re.IGNORECASE
)
NEGATION = re.compile(r"\b(?:not|no|none|nothing|cannot)\b|n't\b", re.IGNORECASE)
# The words of a refusal that names nothing ("The sources do not cover this specific information.").
GENERIC_TEXT = (
    "cover covers covered contain contains provide provided mention mentions mentioned information question "
    "specific specifically topic details detail exact exactly particular further additional explicitly directly "
    "answer given context document documents text passage passages sorry unfortunately"
)
GENERIC_WORDS = frozenset(GENERIC_TEXT.split())


def _first_sentence(text: str) -> tuple[str, bool]:
    """The first sentence of ``text`` and whether it is complete."""
    m = SEGMENT_END.search(text.strip())
    return (text.strip()[: m.end()], True) if m else (text.strip(), False)


# A name a reader would type: a snake_case parameter or function, a call, a long option. Asked what the documents
# do not hold, the 1.5B invents them ("set the `smtpd_enable_utf8` parameter to `yes` [3]", "`nettle_blake2b_hash`");
# from what they hold it copies them (bench/answers.py: one in 436 answers to answerable questions names one no
# source has, a placeholder, `table_name`; 9 in 18 answers to questions the documents do not answer).
NAME = re.compile(r"(?<![\w./-])(?:--[A-Za-z][\w-]+|[A-Za-z]\w*_\w+(?:\(\))?|[A-Za-z_]\w*\(\))")


def unsourced_names(answer: str, question: str, texts: list[str]) -> list[str]:
    """The names in ``answer`` (snake_case parameters and functions, calls, long options: :data:`NAME`) that
    neither the question nor any of ``texts`` holds, in order: what the model may have made up.

    Example:
        >>> unsourced_names("Set smtpd_enable_utf8 = yes, or run postconf -e.", "How?", ["smtputf8_enable = yes"])
        ['smtpd_enable_utf8']
    """
    known = " ".join([question, *texts]).lower()
    names = dict.fromkeys(n for n in NAME.findall(answer) if n.lower().removesuffix("()") not in known)
    return list(names)


def is_refusal(text: str, texts: list[str] | None = None) -> bool:
    """True when the answer opens by saying the sources hold no answer: its first sentence cites nothing, speaks
    of the sources (or apologises) and negates ("The provided sources do not cover it."), and is not a sentence
    of one of the sources ``texts`` copied word for word.

    Why the copy: a source's own words can look like a refusal. Asked patch's default fuzz factor, the 1.5B
    answered with the manual's sentence "The default fuzz factor is 2; there is no point to setting it to more
    than the number of lines of context in the diff, ordinarily 3." ("context", "no"), and asked how much entropy
    a seed needs, with the Nettle Manual's "The concept used in information theory … (not to be confused with the
    thermodynamic concept …)"; both were taken for refusals and asked again. In the logs of bench/answers.py's
    recorded runs, 8 of the 99 first answers taken for refusals were such copies; none of the 90 "The sources do
    not cover it." was.

    Example:
        >>> is_refusal("The sources do not cover how to do that.")
        True
        >>> is_refusal("Debian does not ship it; the sources say to build it [2].")
        False
        >>> is_refusal("It is 2; there is no point to setting it to more than the lines of context.", ["The "
        ...            "default is 2. It is 2; there is no point to setting it to more than the lines of context."])
        False
    """
    first, _ = _first_sentence(text)
    if MARKER.search(first) or not (REFUSAL_CUE.search(first) and NEGATION.search(first)):
        return False
    return not texts or copied_source(first, texts) is None


def is_empty_refusal(sentence: str, asked: set[str]) -> bool:
    """A refusal that names nothing the question did not ("The sources do not cover it."): after a sentence that
    answered, it only contradicts that answer. The 1.5B appends one, echoing the prompt's rule, to 4 of its 71
    answers in bench/answers.py, 3 of them right. A refusal that names what is missing ("The sources do not cover
    the www-master server.") says something and stays.

    Example:
        >>> is_empty_refusal("The sources do not cover this specific information.", content_words("Which format?"))
        True
        >>> is_empty_refusal("The sources do not cover the www-master server.", content_words("Which server?"))
        False
    """
    body = MARKER.sub("", sentence)
    return is_refusal(body) and not content_words(body) - asked - GENERIC_WORDS


def may_be_refusal(text: str) -> bool:
    """While streaming: the first sentence could still turn out a refusal (so it is held back)."""
    first, complete = _first_sentence(text)
    if complete or MARKER.search(first):
        return is_refusal(first)
    return bool(REFUSAL_CUE.search(first) or NEGATION.search(first))


def content_words(text: str) -> set[str]:
    """Lower-case words that carry meaning: 3+ letters or any digit, no stop words; options and calls whole
    (``--no-save``, ``-b``, ``pdf()``: see :data:`CODE`), compound names whole beside their parts
    (``git-daemon-export-ok``: see :data:`COMPOUND`), and the number of a number with its unit (:data:`QUANTITY`).

    Example:
        >>> sorted(content_words("Use the --no-save option of R")), sorted(content_words("trigger_timeout (10s)"))
        (['--no-save', 'option', 'save'], ['10', '10s', 'timeout', 'trigger'])
    """
    low = text.lower()
    words = {w for w in WORD.findall(low) if (len(w) >= 3 or any(c.isdigit() for c in w)) and w not in STOPWORDS}
    compounds = {m for m in COMPOUND.findall(low) if len(m) > 3}
    return words | set(CODE.findall(low)) | compounds | set(QUANTITY.findall(low))


def backing_sources(scores: list[float]) -> list[int]:
    """The numbers of the sources that back a sentence (hold at least :data:`SUPPORTED` of its new words, and
    within :data:`BACKING_MARGIN` of the best), in the sources' order: the reranker's, best first.

    When several sources back a sentence as well, the one ranked highest for the question is the better citation:
    the 1.5B often copies a fact that two sources share and cites the one that merely mentions it (the ``dpkg-deb``
    entry of a command list instead of the FAQ answer that recommends it; bench/answers.py: gold cited 81% -> 89%).

    Example:
        >>> backing_sources([0.5, 1.0, 0.9, 0.2])
        [2, 3]
    """
    if not scores or max(scores) < SUPPORTED:
        return []
    top = max(scores)
    return [n for n, s in enumerate(scores, start=1) if s >= SUPPORTED and s >= top - BACKING_MARGIN]


def own_choice(scores: list[float], segment: str) -> list[int]:
    """The source the model cited itself, kept though no source reaches :data:`SUPPORTED`, when it alone backs the
    sentence best and holds at least :data:`OWN_SUPPORTED` of its new words. Moving a marker or adding one needs the
    full bar; keeping the model's own choice needs less. The 1.5B on the Git pages answered "The remote name used
    for the upstream repository is "origin" unless explicitly overridden by the `--origin` option." and cited
    source [1], which says "Instead of using the remote name origin to keep track of the upstream repository, use
    <name>": 2 of the 5 new words, the others its own, so the right citation was dropped.

    Example:
        >>> own_choice([0.4, 0.2, 0.0], "This is covered in [1]."), own_choice([0.4, 0.2, 0.0], "It is [2].")
        ([1], [])
    """
    top = max(scores, default=0.0)
    best = [n for n, s in enumerate(scores, start=1) if s == top]
    cited = {int(n) for n in MARKER.findall(segment)}
    return best if top >= OWN_SUPPORTED and len(best) == 1 and best[0] in cited else []


class CitationChecker:
    """Checks each ``[n]`` the model writes against the sources, sentence by sentence, as the answer streams.

    Small models put the right fact next to the wrong number ("... is git-buildpackage [1]" when it came from
    [3]). A sentence's *new* words (not in the question) are looked up in each source as the model saw it; the
    sources that back the sentence (:func:`backing_sources`) replace its markers, highest-ranked first, as many
    as the model wrote, and a marker is dropped when no source (or no further one) backs the sentence, unless it
    names the source that backs it best, by a smaller margin (:func:`own_choice`). A marker
    alone (``[1]`` on its own line) is checked against the sentence before it; a marker past the sources given
    is dropped. A marker that closes an answer and a passage pasted from another source cites the answer's source
    too (:meth:`_answer_source`). An answer that cites nothing but is backed by a source gets that source at its
    end. A refusal that names nothing, after a sentence that answered, is dropped (:func:`is_empty_refusal`).

    Example:
        >>> c = CitationChecker("What is gbp?", ["sbuild builds in a chroot", "gbp is git-buildpackage"])
        >>> c.fix("gbp is the alias of git-buildpackage [1].") + c.finish()
        'gbp is the alias of git-buildpackage [2].'
    """

    def __init__(self, question: str, texts: list[str]) -> None:
        self.asked = content_words(question)
        self.sources = [content_words(t) for t in texts]
        self.cited: set[int] = set()
        self.last = ""  # the previous sentence with words in it
        self.run = ""  # the sentences since the last marker: a marker closing them cites them all
        self.run_first = ""  # the first of them: the answer, when a marker on its own closes a pasted paragraph
        self.best_overall = (0.0, 0)

    def support(self, sentence: str) -> list[float]:
        new = content_words(sentence) - self.asked or content_words(sentence)
        if not new:
            return [0.0] * len(self.sources)
        return [len(new & words) / len(new) for words in self.sources]

    def _run_support(self, body: str) -> list[float]:
        """Support for the sentences a marker closes: those since the last marker, ``body`` (the marker's own
        sentence) included. When no source backs them together, the marker's own sentence alone (or, for a marker
        on its own, the sentence before it).

        A marker on its own after several sentences cites the first of them when a source backs it: the prompt asks
        for the answer first, and the 1.5B goes on to paste the passage of the next source, which then outweighed
        the answer ("… an NMU would get version 1.5+nmu1. If the package is not a native package, …" [3] on the
        Developer's Reference, the answer's page being [2]; replayed on 215 recorded answers of bench/answers.py:
        gold cited 202 -> 204, wrong cites 4 -> 2, no answer's citation lost).
        """
        if not body and self.run_first and max(first := self.support(self.run_first), default=0) >= SUPPORTED:
            return first
        scores = self.support(f"{self.run} {body}")
        if max(scores, default=0) < SUPPORTED:
            scores = self.support(body or self.last)
        return scores

    def _answer_source(self, first: str, backing: list[int]) -> int | None:
        """The source of a pasted run's first sentence, when a marker at the end of the run cites other sources:
        it is cited too, before them. The prompt asks for the answer first; the 1.5B then goes on to paste the
        passage of another source and closes the whole run with one marker, which the paste outweighs. On the Z
        Shell Manual, "The command name to assume if a redirection is specified with no command is cat." (the
        NULLCMD entry, source [2]) followed by four sentences of the redirection chapter (source [1]) and one
        marker: [1] alone, so the page that answers was not cited. Replayed on the 1,413 recorded answers of
        bench/answers.py (stops 38-42): two answers changed, both now citing their gold page too (that one, and a
        Postfix answer pasting a see-also line after the answer); no new wrong citation.
        """
        if not first or not backing:
            return None
        own = backing_sources(self.support(first))
        return own[0] if own and not set(own) & set(backing) else None

    def fix(self, segment: str) -> str:
        """``segment`` (a sentence, or a run of markers) with its markers checked."""
        body = MARKER.sub("", segment)
        has_words = bool(content_words(body))
        marked = bool(MARKER.search(segment))
        talk = META.search(body) or POINTS_AT_MARKER.search(body)
        if has_words and marked and talk and max(self.support(META.sub(" ", body)), default=0) < SUPPORTED:
            # "The sources [1] and [2] provide information on this.": talk about the sources, not an answer. Told by
            # its words beside the talk: a source that says "sources" and "information" does not make it an answer
            # (the CMake pages: "The sources [2] and cover this information." once its [1] was dropped).
            has_words = False
            segment = " " + "".join(f"[{n}]" for n in MARKER.findall(segment))
        first = self.run_first  # before this segment updates the run
        scores = self._run_support(body if has_words else "")
        if has_words and self.last and is_empty_refusal(body, self.asked):
            return ""  # after an answer, "The sources do not cover it." only contradicts it
        if has_words:
            self.last = body
        self.run_first = "" if marked else self.run_first or (body if has_words else "")
        self.run = "" if marked else f"{self.run} {body}" if has_words else self.run
        backing = backing_sources(scores) or own_choice(scores, segment)
        if backing and scores[backing[0] - 1] > self.best_overall[0]:
            self.best_overall = (scores[backing[0] - 1], backing[0])
        answer_source = self._answer_source(first, backing) if has_words and marked else None
        backers = iter(backing)

        def check(m: re.Match[str]) -> str:
            nonlocal answer_source
            if not 1 <= int(m.group(1)) <= len(scores):
                return ""
            pick = next(backers, None)
            if pick is None:
                return ""
            picks = [answer_source, pick] if answer_source else [pick]
            answer_source = None
            self.cited.update(picks)
            return "".join(f"[{n}]" for n in picks)

        fixed = MARKER.sub(check, segment)
        if not has_words and MARKER.search(segment):  # "[1], [2]" on its own: keep only the markers that stay
            lead = segment[: len(segment) - len(segment.lstrip())]
            return lead + "".join(f"[{n}]" for n in MARKER.findall(fixed))
        return re.sub(r" +([.,;:])(?=\s|$)", r"\1", re.sub(r"  +", " ", fixed))

    def finish(self) -> str:
        """What to append when the answer cited nothing although a source backs it."""
        score, n = self.best_overall
        if not self.cited and score >= SUPPORTED:
            self.cited.add(n)
            return f" [{n}]"
        return ""


def complete_segments(text: str, start: int, final: bool) -> tuple[list[str], int]:
    """Complete sentences of ``text`` from ``start`` (all of the rest when ``final``), and where they end."""
    out = []
    while m := SEGMENT_END.search(text, start):
        out.append(text[start : m.end()])
        start = m.end()
    if final and start < len(text):
        out.append(text[start:])
        start = len(text)
    return out, start


LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")  # "3. ", "- ": a list's numbering, not its words
LOOP_WORDS = 4  # words a sentence must have before its repetition counts as a loop (not "Yes." twice)


class LoopGuard:
    """Tells when the model writes again a sentence it already wrote: greedy decoding can fall into a loop and
    repeat it until ``max_tokens`` ("The default model is the default model, …" 16 times, the 1.5B on the SDCC
    manual; list items 3 to 11 the same as item 2, the 0.5B on An Introduction to R: 6 of 678 recorded answers of
    bench/answers.py). The answer is cut before the repetition, which also ends the wait for it.

    A sentence repeats when its words (markers and list numbering aside) are all of an earlier sentence's or a
    run inside one.

    Example:
        >>> guard = LoopGuard()
        >>> guard.keep(["It is small. ", "This means the model is the model, which is the model. "])
        (['It is small. ', 'This means the model is the model, which is the model. '], False)
        >>> guard.keep(["The model is the model, which is the model. ", "More. "])
        ([], True)
    """

    def __init__(self) -> None:
        self.seen: list[str] = []

    def keep(self, segments: list[str]) -> tuple[list[str], bool]:
        """The segments before the first repetition, and whether there was one."""
        for i, segment in enumerate(segments):
            body = _norm(LIST_ITEM.sub("", MARKER.sub(" ", segment)))
            if len(body.split()) >= LOOP_WORDS:
                if any(f" {body} " in f" {earlier} " for earlier in self.seen):
                    return segments[:i], True
                self.seen.append(body)
        return segments, False


COPY_WORDS = 8  # words an answer must have before it can be told to be a copy (a short one matches by chance)


def copied_source(text: str, texts: list[str]) -> int | None:
    """The first source (1-based) that holds every sentence of ``text`` word for word, markers aside; None when
    none does, or ``text`` is under :data:`COPY_WORDS` words.

    Why: asked "On which mailing list is a proposal for a vote first discussed?", the 1.5B pasted source [2]'s
    sentence about the Voting Information page while source [1] named debian-vote. In bench/answers.py's 93
    recorded answers, the three whose first sentences were pasted from a source below [1] (and not found in [1])
    were all wrong; the 16 pasted from [1] were all right.

    Example:
        >>> copied_source("Each proposal is first discussed on a list. [2]", ["A list.", "Each proposal is first "
        ...               "discussed on a list. It needs endorsements."])
        2
        >>> copied_source("Proposals are first discussed on a mailing list [2].", ["x", "Each proposal is first "
        ...               "discussed on a list."]) is None
        True
    """
    sentences = [" ".join(MARKER.sub(" ", s).split()).lower().rstrip(" .") for s in complete_segments(text, 0, True)[0]]
    sentences = [s for s in sentences if s]
    if sum(len(s.split()) for s in sentences) < COPY_WORDS:
        return None
    flat = [" ".join(t.split()).lower() for t in texts]
    return next((n for n, f in enumerate(flat, 1) if all(s in f for s in sentences)), None)
