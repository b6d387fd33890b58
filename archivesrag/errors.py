"""The one exception type a user is meant to read, and the wrapper that turns it into an exit code.

Every stage raises :class:`UserError` for problems the user can fix (a bad line in a file, a model that is not
cached, an LLM endpoint that is down). Top-level scripts wrap their ``main`` in :func:`run_cli`, which prints
that one line to stderr and exits non-zero instead of showing a traceback. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can fix; its message is one line naming the place and the fix.

    Example:
        >>> raise UserError("data.jsonl:3: missing key 'text'; every line needs a non-empty \\"text\\"")
    """

    exit_code = 2


def run_cli(main: Callable[[], object]) -> None:
    """Run a script's ``main`` and map known errors to one line on stderr and an exit code.

    Args:
        main: the script's entry point; its return value is ignored unless it is an int exit code.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "httpcore", "urllib3", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        code = main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
