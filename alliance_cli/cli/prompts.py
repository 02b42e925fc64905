"""Ask for a form's answers item by item on a terminal: labels, anchors, going back, a summary.

Prompts and their echo go to stderr only, so ``alliance score wai-sr -f csv > x.csv`` leaves
nothing but the CSV in x.csv. Labels from a user's file are shown literally.
"""

from __future__ import annotations

import sys

import typer

from alliance_cli.core.errors import visible
from alliance_cli.core.scorer import Scorer

HELP = "Enter a number or anchor text · Enter alone = no answer · b = back · q = quit"


def _tell(text: str) -> None:
    sys.stderr.write(visible(text) + "\n")


def _prompt(text: str, default: str = "") -> str:
    """Ask on stderr, read one line from stdin; end of input is 'q' (quit)."""
    shown = f" [{default}]" if default else ""
    sys.stderr.write(visible(f"{text}{shown}: "))
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        sys.stderr.write("\n")
        return "q"
    answer = line.strip()
    return answer if answer else default


def _anchors(scorer: Scorer) -> str:
    scale = scorer.instrument.scale
    if scale.labels:
        return "  ".join(f"{v:g} {t}" for v, t in sorted(scale.labels.items()))
    return f"{scale.min:g} to {scale.max:g} in steps of {scale.step:g}"


def _ask(scorer: Scorer, pos: int, current: str) -> str:
    """Ask one item until the answer is usable; return it, or 'b' / 'q'."""
    item = scorer.instrument.items[pos]
    n = len(scorer.item_ids)
    while True:
        # The official wording when the user's own instrument file holds it, else our label.
        shown = getattr(item, "text", None) or item.label
        answer = _prompt(f"[{pos + 1}/{n}] item {item.id} · {shown}", current)
        if answer.lower() in ("b", "q"):
            return answer.lower()
        if answer == "":
            return ""
        _, _, problem = scorer.parse(pos, answer)
        if problem is None:
            return answer
        _tell(f"  {problem}; {_anchors(scorer)}")


def prompt_answers(scorer: Scorer) -> list[str]:
    """Prompt for every item, allow going back, and confirm with a summary before scoring."""
    inst = scorer.instrument
    n = len(scorer.item_ids)
    _tell(f"{inst.name}: {n} items. Scale: {_anchors(scorer)}")
    _tell(HELP)
    answers = [""] * n
    pos = 0
    while True:
        while pos < n:
            got = _ask(scorer, pos, answers[pos])
            if got == "q":
                raise typer.Abort()
            if got == "b":
                pos = max(pos - 1, 0)
                continue
            answers[pos] = got
            pos += 1
        _tell("\nSummary:")
        for i, item in enumerate(inst.items):
            shown = answers[i] if answers[i] else "(no answer)"
            _tell(f"  {item.id:>3}  {item.label:<36} {shown}")
        choice = _prompt("Enter to score, an item number to change it, or q to quit")
        if choice == "":
            return answers
        if choice.lower() == "q":
            raise typer.Abort()
        if choice in scorer.position:
            pos = scorer.position[choice]
            answers_before = answers[pos]
            got = _ask(scorer, pos, answers_before)
            if got not in ("b", "q"):
                answers[pos] = got
            pos = n
        else:
            _tell(f"  no item {choice!r}")
            pos = n
