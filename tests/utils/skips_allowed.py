# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print the skips (read from stdin, "NAME: REASON" a line) that the allowlist does not list.

    printf '%s\\n' "${skips[@]}" | python tests/utils/skips_allowed.py tests/skips-allowed.txt

Each allowlist line is `PATTERN  # REASON`: PATTERN is matched against a skip's NAME with shell
wildcards (fnmatch), and REASON says why that test may not run in CI. A line without a reason is
itself printed as a problem, so it fails the run like an unlisted skip.
"""

from __future__ import annotations

import fnmatch
import sys


def read_allowlist(path: str) -> tuple[list[str], list[str]]:
    """(patterns, problems) of the allowlist file."""
    patterns, problems = [], []
    with open(path, encoding="utf-8") as allowlist:
        for number, line in enumerate(allowlist, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            pattern, _separator, reason = text.partition(" #")
            if not pattern.strip() or not reason.strip():
                problems.append(f"{path}:{number}: '{text}' needs the form 'PATTERN  # REASON'")
                continue
            patterns.append(pattern.strip())
    return patterns, problems


def unlisted(skips: list[str], patterns: list[str]) -> list[str]:
    return [skip for skip in skips
            if not any(fnmatch.fnmatchcase(skip.split(": ", 1)[0], pattern) for pattern in patterns)]


def main(path: str) -> int:
    patterns, problems = read_allowlist(path)
    skips = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for line in problems + unlisted(skips, patterns):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
