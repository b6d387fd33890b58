"""python bench/loop_beir.py DIR [--queries_per_passage 2] [--recipes contrastive,kl] [--learning_rate 5e-5] [--tag T]
python bench/loop_beir.py --make_stdlib .bench/stdlib-beir          # build a BEIR-layout set from real text here
python bench/loop_beir.py --make_debian debian-faq .bench/debian-faq  # or harden-doc: a Debian manual's FAQ

Quality of the loop on any BEIR-layout dataset (DIR/corpus.jsonl, DIR/queries.jsonl, DIR/qrels/test.tsv):
synthetic queries generated from the corpus only (never the dataset's queries) -> mine_hn.py -> run.py ->
evaluate.py on the dataset's own test queries: base vs each training recipe (unmerged, and merged with the base,
``--merge_base``) vs BM25, with each gain's paired-bootstrap interval and each step's wall time. Each stage runs as
its script, as loop.py runs it. Queries are generated once per dataset into .bench/loop-NAME/query.raw.jsonl and
shared by every configuration (``--tag`` keeps their runs apart). Target (issues 9, 15): the fine-tuned
all-MiniLM-L6-v2 gains >= +3 nDCG@10 points over the base on each real domain (the two Debian manuals below; a
SciFact folder where the network allows a download).

--make_stdlib writes a BEIR-layout set from the Python standard library's docstrings (real, human-written text:
queries = a function's one-line summary, relevant document = the rest of its docstring, plus distractor
paragraphs), for machines where no BEIR download is possible.

--make_debian PACKAGE writes one from a Debian documentation package (fetched with ``apt-get download``, unpacked
with ``dpkg-deb``): every DocBook section of the manual is a document (its text without its heading); every section
whose heading is a question ("How can I check that I am using a Debian system?") gives a test query, the heading
the manual's authors wrote, relevant to that section only. The rest of the manual is the distractors. Headings are
stripped from the corpus, so the synthetic queries (generated from the corpus) never see a test query.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
# The recipes compared are loop.py's own (run.py flags; distillation learns the bundled cross-encoder's scores).
from archivesrag.loop import RECIPES  # noqa: E402


def make_stdlib(out: Path, n_queries: int = 600, n_distractors: int = 2000) -> None:
    from corpus import stdlib_pairs, stdlib_paragraphs

    pairs = stdlib_pairs(n_queries)
    bodies = {t for _, t in pairs}
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with (out / "corpus.jsonl").open("w") as c, (out / "queries.jsonl").open("w") as q, \
            (out / "qrels" / "test.tsv").open("w") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for i, (query, body) in enumerate(pairs):
            c.write(json.dumps({"_id": f"d{i}", "title": "", "text": body}) + "\n")
            q.write(json.dumps({"_id": f"q{i}", "text": query}) + "\n")
            r.write(f"q{i}\td{i}\t1\n")
        for j, para in enumerate(p for p in stdlib_paragraphs(n_distractors) if p not in bodies):
            c.write(json.dumps({"_id": f"x{j}", "title": "", "text": para}) + "\n")
    print(f"wrote {out}: {len(pairs)} queries")


DEBIAN_MANUALS = {
    # package: (HTML folder inside the package, file glob, test queries: question headings only or every heading)
    "debian-faq": ("usr/share/doc/debian/FAQ", "*.en.html", "questions"),
    # Its FAQ chapter has only 33 questions (too few to tell +3 points from noise), so every heading of four or
    # more words is a query: "Setting up a BIOS password", "Restricting console login access".
    "harden-doc": ("usr/share/doc/harden-doc/html/en-US", "*.html", "headings"),
}


def debian_html(package: str, cache: Path) -> list[Path]:
    """The English HTML pages of a Debian documentation package, downloaded and unpacked once into ``cache``."""
    folder, pattern, _ = DEBIAN_MANUALS[package]
    root = cache / package
    if not (root / folder).is_dir():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True, capture_output=True)
        deb = max(cache.glob(f"{package}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return sorted((root / folder).glob(pattern))


def docbook_sections(pages: list[Path]) -> list[tuple[str, str, str]]:
    """(id, heading, text) of every DocBook section: the section's own paragraphs, lists and examples, without
    its heading and without its subsections (each is a section of its own)."""
    import lxml.html

    out = []
    for page in pages:
        tree = lxml.html.parse(str(page))
        for sec in tree.xpath("//div[starts-with(@class, 'section') or @class='sect1' or @class='sect2']"):
            title = sec.xpath("./div[@class='titlepage']//*[contains(@class, 'title')]")
            if not title:
                continue
            heading = " ".join(title[0].text_content().split())
            heading = re.sub(r"^(?:[A-Z]\.)?[\d.]+\s*", "", heading.replace("\xa0", " "))
            parts = [c for c in sec if c.get("class") not in ("titlepage", "section", "toc") and c.tag != "a"]
            text = "\n".join(" ".join(c.text_content().split()) for c in parts).strip()
            anchor = (title[0].xpath(".//a/@id") or [str(len(out))])[0]
            if len(text.split()) >= 15:
                out.append((f"{page.stem}#{anchor}", heading, text))
    return out


def make_debian(package: str, out: Path) -> None:
    """A BEIR-layout set from a Debian manual: question headings -> their sections (see the module docstring)."""
    sections = docbook_sections(debian_html(package, ROOT / ".bench" / "debs"))
    questions_only = DEBIAN_MANUALS[package][2] == "questions"
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    n = 0
    with (out / "corpus.jsonl").open("w") as c, (out / "queries.jsonl").open("w") as q, \
            (out / "qrels" / "test.tsv").open("w") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for doc_id, heading, text in sections:
            c.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
            if heading.endswith("?") or (not questions_only and len(heading.split()) >= 4):
                q.write(json.dumps({"_id": f"q{n}", "text": heading}) + "\n")
                r.write(f"q{n}\t{doc_id}\t1\n")
                n += 1
    print(f"wrote {out}: {len(sections)} sections, {n} headings as test queries")


def run(cmd: list[str], times: dict[str, float], step: str) -> None:
    """Run one stage script as a user would; its wall time goes to ``times[step]``."""
    print("+", " ".join(cmd), flush=True)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *cmd], cwd=ROOT)
    times[step] = times.get(step, 0.0) + time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}")


def write_passages(beir: Path, out: Path) -> None:
    with out.open("w") as f:
        for line in (beir / "corpus.jsonl").open():
            d = json.loads(line)
            text = (d.get("title", "") + "\n" + d["text"]).strip()
            f.write(json.dumps({"id": d["_id"], "text": text}) + "\n")


def write_subset(raw: Path, passages: Path, n: int, per_passage: int, out: Path) -> None:
    """The first ``per_passage`` queries of each of the ``n`` passages gen_query.py samples with its default seed,
    as ``--max_passages n --queries_per_passage per_passage`` would write them (the raw file may hold more)."""
    from archivesrag.querygen import select_passages
    from archivesrag.records import read_passages

    keys = {p.key for p in select_passages(read_passages(str(passages)), n, 42)}
    taken: dict[str, int] = {}
    lines = []
    for line in raw.open():
        key = json.loads(line)["id"] if line.strip() else None
        if key in keys and taken.get(key, 0) < per_passage:
            taken[key] = taken.get(key, 0) + 1
            lines.append(line)
    if not out.exists() or out.read_text() != "".join(lines):
        out.write_text("".join(lines))
    print(f"{len(lines)} queries for {len(keys)} passages")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("beir_dir", nargs="?")
    ap.add_argument("--make_stdlib", help="write a BEIR-layout set from stdlib docstrings here, then stop")
    ap.add_argument("--make_debian", nargs=2, metavar=("PACKAGE", "DIR"), help=f"one of {sorted(DEBIAN_MANUALS)}")
    ap.add_argument("--queries_from", type=int, default=300, help="corpus passages to generate queries for")
    ap.add_argument("--queries_per_passage", type=int, default=1)
    ap.add_argument("--llm", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--base", default="bundled")
    ap.add_argument("--recipes", default="contrastive,kl,margin_mse,kl+contrastive", help=f"of {sorted(RECIPES)}")
    ap.add_argument("--merge_base", default="0.5", help="also a merge of each recipe with the base (none: off)")
    ap.add_argument("--teacher_margin", default=None, help="mine_hn.py --teacher_margin: the teacher drops negatives")
    ap.add_argument("--filter", action="store_true", help="round-trip filter the queries with the base model")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--learning_rate", default="2e-5")
    ap.add_argument("--batch_size", default="32")
    ap.add_argument("--group_size", default="4")
    ap.add_argument("--temperature", default="0.02")
    ap.add_argument("--tag", default="", help="suffix for the work folder of this configuration")
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    if args.make_stdlib:
        return make_stdlib(Path(args.make_stdlib))
    if args.make_debian:
        if args.make_debian[0] not in DEBIAN_MANUALS:
            ap.error(f"--make_debian {args.make_debian[0]}: choose one of {', '.join(DEBIAN_MANUALS)}")
        return make_debian(args.make_debian[0], Path(args.make_debian[1]))
    if not args.beir_dir:
        ap.error("give a BEIR folder, --make_stdlib DIR or --make_debian PACKAGE DIR")
    unknown = [r for r in args.recipes.split(",") if r not in RECIPES]
    if unknown:
        ap.error(f"--recipes {','.join(unknown)}: choose from {', '.join(RECIPES)}")
    beir = Path(args.beir_dir)
    work = ROOT / ".bench" / f"loop-{beir.name}"
    work.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    passages = work / "passages.jsonl"
    write_passages(beir, passages)
    raw = work / "query.raw.jsonl"  # generated once per dataset (resumable), shared by every configuration
    gen = ["gen_query.py", "--input_file", str(passages), "--output_file", str(raw), "--max_passages",
           str(args.queries_from), "--queries_per_passage", str(args.queries_per_passage),
           "--concurrency", str(args.concurrency)]
    gen += ["--llm", args.llm] if args.llm else []
    gen += ["--model", args.model] if args.model else []
    run(gen, times, "queries")
    runs = work / f"runs{args.tag}"
    runs.mkdir(exist_ok=True)
    queries = runs / "query.jsonl"  # the raw file may hold queries for more passages (an earlier, larger run)
    write_subset(raw, passages, args.queries_from, args.queries_per_passage, queries)
    if args.filter:
        from archivesrag.querygen import QueryGenArgs, filter_queries

        started = time.perf_counter()
        filtered = runs / "query.filtered.jsonl"
        if filtered.exists() and filtered.stat().st_mtime > queries.stat().st_mtime:
            print(f"{filtered}: filtered earlier from these queries; reused")
        else:
            args_ = QueryGenArgs(str(passages), str(filtered), filter_model=args.base)
            print(f"round-trip filter dropped {dict(filter_queries(queries, filtered, args_))}")
        queries = filtered
        times["filter"] = time.perf_counter() - started
    mined = runs / "mined.jsonl"
    distill = any(RECIPES[r] for r in args.recipes.split(","))
    teacher = ["--teacher_model", "bundled"] if distill or args.teacher_margin else []
    teacher += ["--teacher_margin", args.teacher_margin] if args.teacher_margin else []
    if mined.exists() and mined.stat().st_mtime > queries.stat().st_mtime:
        print(f"{mined}: mined earlier from these queries; reused")
    else:
        run(["mine_hn.py", "--model_name_or_path", args.base, "--input_file", str(queries), "--output_file", str(mined),
         "--candidate_pool", str(passages), "--range_for_sampling", "2-200", "--negative_number", "15",
             "--relative_margin", "0.05", *teacher], times, "mine + teacher" if teacher else "mine")
    common = ["--model_name_or_path", args.base, "--train_data", str(mined), "--learning_rate", args.learning_rate,
              "--num_train_epochs", str(args.epochs), "--per_device_train_batch_size", args.batch_size,
              "--train_group_size", args.group_size, "--temperature", args.temperature, "--query_max_len", "64",
              "--passage_max_len", "256", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "True",
              "--overwrite_output_dir", "True"]
    models = [args.base]
    for recipe in args.recipes.split(","):
        out = runs / recipe
        merge = ["--merge_base", args.merge_base] if args.merge_base.lower() != "none" else []
        run(["run.py", "--output_dir", str(out), *common, *RECIPES[recipe], *merge], times, f"train {recipe}")
        models += [str(out / "unmerged"), str(out)] if merge else [str(out)]
    evaluation = runs / "eval.json"
    run(["evaluate.py", "--beir_dir", str(beir), *[x for m in models for x in ("--model_name_or_path", m)],
         "--output", str(evaluation)], times, "evaluate")
    table = json.loads(evaluation.read_text())["metrics"]
    print(f"\n{beir.name}: nDCG@10 x100 on the manual's own questions ({args.tag or 'default'} configuration)")
    print("| model | nDCG@10 | gain vs base [95% CI] | verdict |\n|---|---:|---|---|")
    for name, row in table.items():
        label = Path(name).parent.name + " (unmerged)" if name.endswith("unmerged") else Path(name).name
        label += f" + merge {args.merge_base}" if merge and name in models[2::2] else ""
        gain = (f"{100 * row['ndcg@10_gain']:+.2f} [{100 * row['ndcg@10_gain_low']:+.2f}, "
                f"{100 * row['ndcg@10_gain_high']:+.2f}]" if "ndcg@10_gain" in row else "")
        print(f"| {label} | {100 * row['ndcg@10']:.2f} | {gain} | {row.get('verdict', '')} |")
    print("\nwall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))


if __name__ == "__main__":
    main()
