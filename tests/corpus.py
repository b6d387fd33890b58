"""Real text for tests and benches: (query, passage) pairs from the Python standard library's docstrings.

The query is a docstring's summary line, the passage its body (PSF licence). Built at run time from a fixed
module list, sorted, so the same Python gives the same pairs.
"""

from __future__ import annotations

import importlib
import inspect

MODULES = [
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "configparser", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "decimal", "difflib", "email.message", "enum", "fractions", "ftplib",
    "functools", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "html.parser", "http.client",
    "http.cookiejar", "http.server", "imaplib", "inspect", "ipaddress", "json", "logging", "logging.handlers",
    "mailbox", "mimetypes", "multiprocessing.pool", "netrc", "numbers", "operator", "optparse", "os", "pathlib",
    "pickle", "pkgutil", "platform", "plistlib", "poplib", "pprint", "queue", "random", "re", "sched", "secrets",
    "selectors", "shelve", "shlex", "shutil", "smtplib", "socket", "socketserver", "sqlite3", "ssl", "statistics",
    "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize", "trace",
    "traceback", "turtle", "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "warnings", "wave",
    "weakref", "xml.dom.minidom", "xml.etree.ElementTree", "zipfile", "zoneinfo",
]  # fmt: skip


def _docs():
    for modname in MODULES:
        try:
            mod = importlib.import_module(modname)
        except Exception:
            continue
        for name, obj in sorted(vars(mod).items()):
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            yield f"{modname}.{name}", inspect.getdoc(obj)
            if inspect.isclass(obj):
                for mname, meth in sorted(vars(obj).items()):
                    if not mname.startswith("_") and callable(meth):
                        yield f"{modname}.{name}.{mname}", inspect.getdoc(meth)


def stdlib_pairs(n: int | None = None, min_words: int = 25, max_words: int = 180) -> list[tuple[str, str]]:
    """Up to ``n`` (query, passage) pairs with distinct passages of ``min_words``..``max_words`` words."""
    out, seen = [], set()
    for _, doc in _docs():
        if not doc:
            continue
        summary, _, body = doc.partition("\n")
        body = " ".join(body.split())
        summary = " ".join(summary.split())
        if len(summary.split()) < 4 or not (min_words <= len(body.split()) <= max_words) or body in seen:
            continue
        seen.add(body)
        out.append((summary, body))
        if n is not None and len(out) >= n:
            break
    return out
