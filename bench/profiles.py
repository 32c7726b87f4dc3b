"""Summaries of py-spy's collapsed stacks (``--format raw``): where a node spent its time.

``python -m bench.profiles FILE [--top N] [--match TEXT]`` prints the functions with the
most samples on the stack (inclusive) and at the top of it (self), as shares of all
samples.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

__all__ = ["Profile", "load"]


class Profile:
    """Sample counts per function (``name (file:line)`` without the line), inclusive and
    self."""

    def __init__(self) -> None:
        self.total = 0
        self.inclusive: Counter[str] = Counter()
        self.own: Counter[str] = Counter()

    def add(self, stack: list[str], samples: int) -> None:
        self.total += samples
        frames = [_function(frame) for frame in stack]
        for frame in set(frames):
            self.inclusive[frame] += samples
        if frames:
            self.own[frames[-1]] += samples

    def report(self, top: int, match: str | None = None) -> str:
        lines = [f"{self.total} samples"]
        for title, counter in (("inclusive", self.inclusive), ("self", self.own)):
            lines.append(f"-- {title}")
            shown = 0
            for name, count in counter.most_common():
                if match and match not in name:
                    continue
                lines.append(f"{100 * count / max(1, self.total):6.1f}%  {name}")
                shown += 1
                if shown >= top:
                    break
        return "\n".join(lines)


def _function(frame: str) -> str:
    """``f (path/to/mod.py:12)`` -> ``f (mod.py)``: one entry per function."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = path.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({short})"


def load(path: Path, *, skip_idle: bool = True) -> Profile:
    """Read a collapsed-stack file; ``skip_idle`` drops samples waiting in ``select``."""
    profile = Profile()
    for line in path.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text:
            continue
        stack = stack_text.split(";")
        if skip_idle and stack and ("select (selectors.py" in stack[-1] or "poll" in stack[-1]):
            continue
        profile.add(stack, int(count))
    return profile


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profiles")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", help="only functions whose name or file contains this")
    args = parser.parse_args(argv)
    for path in args.files:
        print(f"== {path.name}")
        print(load(path).report(args.top, args.match))


if __name__ == "__main__":
    main()
