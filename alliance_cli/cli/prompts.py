"""Ask for a form's answers item by item on a terminal: labels, anchors, going back, a summary.

Prompts and their echo go to stderr only, so ``alliance score wai-sr -f csv > x.csv`` leaves
nothing but the CSV in x.csv. Labels from a user's file are shown literally.
"""

from __future__ import annotations

import sys

from alliance_cli.core.errors import QuitByUser, visible
from alliance_cli.core.scorer import Scorer
from alliance_cli.core.words import counted

HELP = (
    "Enter a number or anchor text · Enter alone = no answer · b = back · q = quit\n"
    "(or paste every answer at the first question: 4 4 5 3 ... or 4,4,5,3,...; - or an empty\n"
    "place between commas for an item left unanswered: 4 - 5 3 ... or 4,,5,3,...)"
)


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


def _anchors(scorer: Scorer, pos: int | None = None, bare: bool = False) -> str:
    """The scale's anchors; for an item whose paper form prints its choices highest first,
    in that order, and said so (so a paper form is copied by label, never by position)."""
    scale = scorer.instrument.scale
    item = scorer.instrument.items[pos] if pos is not None else None
    descending = item is not None and getattr(item, "paper_order", "") == "descending"
    if scale.labels:
        pairs = sorted(scale.labels.items(), reverse=descending)
        text = "  ".join(f"{v:g} {t}" for v, t in pairs)
        if descending and not bare:
            text += "  (the paper form prints this item highest first)"
        return text
    return f"{scale.min:g} to {scale.max:g} in steps of {scale.step:g}"


def _words(text: str) -> list[str]:
    """A pasted line's answers: between commas (an empty place is no answer), else between
    spaces."""
    return [w.strip() for w in text.split(",")] if "," in text else text.split()


def _pasted(scorer: Scorer, text: str) -> list[str] | None:
    """Every answer given at once (as many values as items, spaces or commas), or None."""
    words = _words(text)
    if len(words) != len(scorer.item_ids):
        return None
    return ["" if w in ("-", "_") else w for w in words]


def _shown(scorer: Scorer, pos: int, answer: str) -> str:
    """An answer as the summary shows it: the value on the scale and its anchor."""
    if not answer:
        return "(no answer)"
    raw, reason, problem = scorer.parse(pos, answer)
    if raw is None:
        return answer if problem else f"(missing: {reason})"
    anchor = scorer.instrument.scale.labels.get(raw)
    return f"{raw:g} · {anchor}" if anchor else f"{raw:g}"


def _ask(scorer: Scorer, pos: int, current: str, whole: bool = False) -> str:
    """Ask one item until the answer is usable; return it, or 'b' / 'q'.

    With ``whole``, a line holding every answer is returned as it is (pasted answers).
    """
    item = scorer.instrument.items[pos]
    n = len(scorer.item_ids)
    while True:
        # The official wording when the user's own instrument file holds it, else our label.
        shown = getattr(item, "text", None) or item.label
        if getattr(item, "paper_order", "") == "descending":
            _tell(f"  (on paper this item runs highest first: {_anchors(scorer, pos, bare=True)})")
        answer = _prompt(f"[{pos + 1}/{n}] item {item.id} · {shown}", current)
        if answer.lower() in ("b", "q"):
            return answer.lower()
        if answer == "":
            return ""
        if whole and _pasted(scorer, answer) is not None:
            return answer
        _, _, problem = scorer.parse(pos, answer)
        if problem is None:
            return answer
        words = _words(answer)
        given = len(words)
        pasted = "," in answer or any(scorer.parse(pos, w)[2] is None for w in words)
        if whole and given > 1 and pasted:  # answers pasted, but not one for every item
            _tell(
                f"  {counted(given, 'answer')} pasted, and the form has {counted(n, 'item')}: "
                f"paste all {n} (- or an empty place between commas for one left unanswered), "
                "or answer item 1 alone"
            )
            continue
        _tell(f"  {problem}; {_anchors(scorer, pos)}")


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
            got = _ask(scorer, pos, answers[pos], whole=pos == 0 and not any(answers))
            if got == "q":
                raise QuitByUser()
            if got == "b":
                pos = max(pos - 1, 0)
                continue
            pasted = _pasted(scorer, got) if pos == 0 else None
            if pasted is not None:
                answers, pos = pasted, n
                for i, answer in enumerate(answers):  # a bad value is asked again, alone
                    problem = scorer.parse(i, answer)[2] if answer else None
                    if problem is not None:
                        _tell(f"  item {scorer.item_ids[i]}: {problem}")
                        again = _ask(scorer, i, "")
                        if again == "q":
                            raise QuitByUser()
                        answers[i] = "" if again == "b" else again
                continue
            answers[pos] = got
            pos += 1
        _tell("\nSummary:")
        for i, item in enumerate(inst.items):
            _tell(f"  {item.id:>3}  {item.label:<36} {_shown(scorer, i, answers[i])}")
        choice = _prompt("Enter to score, an item number to change it, or q to quit")
        if choice == "":
            return answers
        if choice.lower() == "q":
            raise QuitByUser()
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
