"""The batch fast path: memo tables over blocks of cells, and a row function generated per
instrument from them.

Every memo entry, of a block or of a scale, has one shape (``Memo``):
``(sum, answered, code, text, flags)``, where ``code`` packs an integer sum and the answered
count into one int (``sum * PACK + answered``) that adds up across blocks, ``text`` is the
scale's CSV cells and ``flags`` its flag codes. A block's ``text`` and ``flags`` are set only
when the block is a whole scale.
"""

from __future__ import annotations

import csv
import linecache
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from itertools import count, repeat
from operator import add, itemgetter
from typing import Any, Final, cast

from alliance_cli.core.contract import MAX_ID_CHARS
from alliance_cli.core.memo import Remembered
from alliance_cli.core.scorer import ScaleResult, Scorer
from alliance_cli.io.csvout import FORMULA_START, csv_join, scale_cells

MEMO_LIMIT = 200_000  # entries in any one memo table
MEMO_BYTES = 24 * 1024 * 1024  # all memo tables of one batch together, estimated
_ENTRY_OVERHEAD = 100  # a dict slot and its hash, with room to spare
PACK = 256  # answered counts stay below this when sums are packed into one int
TEXT: Final = 3  # where a memo entry keeps the scale's CSV text
FLAGS: Final = 4  # and where its flag codes

Memo = tuple[float, int, int | None, str | None, str | None]
_sources = count()  # numbers the generated functions' file names for tracebacks


def _blocks(scorer: Scorer) -> list[tuple[int, ...]]:
    """Partition the items into blocks of at most four, each inside one scale where possible.

    Every scale must be a union of blocks. Disjoint subscales give blocks that fit them; if
    subscales overlap, each item is its own block.
    """
    plans = [set(p.positions) for p in scorer.plans]
    subs = plans[:-1]
    disjoint = all(not (a & b) for i, a in enumerate(subs) for b in subs[i + 1 :])
    if disjoint:
        groups = [sorted(s) for s in subs]
        covered = set().union(*subs) if subs else set()
        groups.append([p for p in range(len(scorer.item_ids)) if p not in covered])
        blocks = [tuple(g[i : i + 4]) for g in groups for i in range(0, len(g), 4)]
        blocks = [b for b in blocks if b]
        if all(any(set(b) <= plan or not set(b) & plan for b in blocks) for plan in plans) and all(
            all(set(b) <= plan or not set(b) & plan for b in blocks) for plan in plans
        ):
            return blocks
    return [(p,) for p in range(len(scorer.item_ids))]


class FastRows:
    """Score CSV rows through memo tables; falls back to the Scorer for anything odd.

    Items are grouped in blocks of up to four. A block's cells (a tuple of strings) map to
    (sum, answered) through a memo, and a scale's (sum, answered) maps to its output cells
    through another: a typical row costs a few dictionary look-ups, no parsing, no formatting.
    """

    def __init__(self, scorer: Scorer, columns: Sequence[int]) -> None:
        self.scorer = scorer
        self.memo_bytes = 0
        self.memo_full = False
        integer = float(scorer.step).is_integer() and float(scorer.low).is_integer()
        self.add = sum if integer else math.fsum
        self.integer = integer and len(scorer.item_ids) < PACK
        self.blocks = _blocks(scorer)
        self.getters = [itemgetter(*(columns[p] for p in block)) for block in self.blocks]
        self.block_memo: list[dict[Any, Memo | None]] = [{} for _ in self.blocks]
        self.plans = []
        for plan in scorer.plans:
            members = [i for i, b in enumerate(self.blocks) if set(b) <= set(plan.positions)]
            self.plans.append((plan.id, tuple(members), len(plan.positions), plan.max_missing))
        self.scale_memo: list[dict[Any, Memo]] = [{} for _ in self.plans]
        # A block that is a whole scale carries that scale's text in its memo entry,
        # saving one look-up per scale per row.
        self.block_scale = {
            i: j
            for j, plan in enumerate(scorer.plans)
            for i, block in enumerate(self.blocks)
            if set(block) == set(plan.positions)
        }

    def _block(self, index: int, key: Any) -> tuple[float, int] | None:
        cells = key if isinstance(key, tuple) else (key,)
        values = []
        for pos, cell in zip(self.blocks[index], cells, strict=True):
            value = self.scorer.cell_tables[pos].get(cell)
            if value is None:
                return None  # unusual text: the full parser decides
            if value.__class__ is float:
                values.append(value)
        return self.add(values), len(values)

    def _scale_entry(self, index: int, total: float, answered: int) -> Memo:
        """The memo entry of one scale result: its CSV cells and flag codes as text."""
        sid, _, n, max_missing = self.plans[index]
        if n - answered > max_missing:
            res = ScaleResult(None, None, answered, False)
        else:
            mean = total / answered
            res = ScaleResult(mean, total if answered == n else mean * n, answered, answered < n)
        flags = ";".join(f"below_cutoff:{sid}" for _ in self.scorer.cutoff_hits(sid, res))
        return total, answered, None, csv_join(scale_cells(self.scorer, sid, res)), flags

    def _fill_block(self, index: int, key: Any) -> Memo | None:
        """The memo entry of a block's cells, or None when a cell needs the full parser."""
        found = self._block(index, key)
        hit: Memo | None = None
        if found is not None:
            total, answered = found
            code = int(total) * PACK + answered if self.integer else None
            text = flags = None
            if index in self.block_scale:
                j = self.block_scale[index]
                whole = self.scale_memo[j].get(found) or self._fill_scale(j, found)
                text, flags = whole[TEXT], whole[FLAGS]
            hit = (total, answered, code, text, flags)
        if len(self.block_memo[index]) < MEMO_LIMIT and self._room(key, hit):
            self.block_memo[index][key] = hit
        return hit

    def _room(self, key: Any, value: Any) -> bool:
        """Whether a new memo entry fits the byte budget (counted as it is added).

        Entries are capped by bytes as well as by count: a 12-item 0-10-by-0.1 form has
        too many distinct blocks for any count limit to keep memory flat.
        """
        if self.memo_full:
            return False
        size = _ENTRY_OVERHEAD + _size(key) + _size(value)
        if self.memo_bytes + size > MEMO_BYTES:
            self.memo_full = True  # from here on, misses are computed and not kept
            return False
        self.memo_bytes += size
        return True

    def _fill_scale(self, index: int, key: Any) -> Memo:
        """The memo entry of a scale, keyed by a packed code or by (sum, answered)."""
        if isinstance(key, int):
            answered = key % PACK
            got = self._scale_entry(index, float((key - answered) // PACK), answered)
        else:
            got = self._scale_entry(index, *key)
        if len(self.scale_memo[index]) < MEMO_LIMIT and self._room(key, got):
            self.scale_memo[index][key] = got
        return got

    def compile(
        self, id_checks: dict[int, Callable[[str], bool]] | None = None
    ) -> Callable[[Sequence[str]], str | None]:
        """A row function specialised to this instrument, unrolled over blocks and scales.

        It returns the score cells and the flags column already joined as CSV text (quoted
        as csv.writer would), or None for the parser. ``id_checks`` maps a column to a
        memoised yes/no on its cell (session, date): a no sends the row to the parser, which
        gives the reason.

        Generated source (as dataclasses and attrs do) because a loop over 3-20 blocks costs
        more interpreter time per row than the look-ups themselves; the logic is the same
        as the memo tables above, and tests compare it with the Scorer.
        """
        lines = ["def cells(row):"]
        env: dict[str, Any] = {"fill_block": self._fill_block}
        for n, (col, check) in enumerate(sorted((id_checks or {}).items())):
            good: set[str] = set()  # cells already found fine: one set look-up a row
            env[f"idg{n}"], env[f"idc{n}"] = good, _remembering(check, good)
            lines += [
                f"    if row[{col}] not in idg{n} and not idc{n}(row[{col}]):",
                "        return None",
            ]
        env["fill_scale"] = self._fill_scale
        for i in range(len(self.blocks)):
            env[f"g{i}"], env[f"m{i}"] = self.getters[i], self.block_memo[i]
            # An odd key is memoised as None and re-checked by fill_block: rare, and it
            # keeps the common path to one look-up and one test.
            lines += [
                f"    k{i} = g{i}(row)",
                f"    h{i} = m{i}.get(k{i})",
                f"    if h{i} is None:",
                f"        h{i} = fill_block({i}, k{i})",
                f"        if h{i} is None:",
                "            return None",
            ]
        exact = self.add is math.fsum
        names: list[str] = []  # the variable holding each scale's memo entry
        env["fsum"] = math.fsum
        for j, (_, members, _, _) in enumerate(self.plans):
            env[f"s{j}"] = self.scale_memo[j]
            if len(members) == 1 and self.block_scale.get(members[0]) == j:
                names.append(f"h{members[0]}")  # the block is the scale: its entry has the text
                continue
            names.append(f"c{j}")
            if self.integer:
                key = " + ".join(f"h{m}[2]" for m in members)
            elif len(members) == 1:
                key = f"(h{members[0]}[0], h{members[0]}[1])"
            else:
                parts = [f"h{m}[0]" for m in members]
                total = f"fsum(({', '.join(parts)},))" if exact else " + ".join(parts)
                count = " + ".join(f"h{m}[1]" for m in members)
                key = f"({total}, {count})"
            lines += [f"    q{j} = {key}", f"    c{j} = s{j}.get(q{j}) or fill_scale({j}, q{j})"]

        joined = ",".join(f"{{{name}[{TEXT}]}}" for name in names)
        flagged = [j for j, (sid, *_) in enumerate(self.plans) if sid in self.scorer.cutoffs]
        if not flagged:
            flag_text = ""
        elif len(flagged) == 1:
            flag_text = f"{{{names[flagged[0]]}[{FLAGS}]}}"
        else:  # several scales with cutoffs: join the non-empty ones, outside the f-string
            entries = ", ".join(f"{names[j]}[{FLAGS}]" for j in flagged)
            lines.append(f'    flags = ";".join([f for f in ({entries},) if f])')
            flag_text = "{flags}"
        lines.append(f'    return f"{joined},{flag_text}"')
        source = "\n".join(lines) + "\n"
        # Registered with linecache (as attrs does) so a traceback shows the generated code.
        filename = f"<alliance fast path {next(_sources)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), env)
        function: Callable[[Sequence[str]], str | None] = env["cells"]
        return function


def _size(value: Any) -> int:
    """Approximate bytes held by a memo key or value (tuples, lists, strings, numbers)."""
    if isinstance(value, tuple | list):
        return sys.getsizeof(value) + sum(_size(v) for v in value)
    return sys.getsizeof(value) if value is not None else 0


def _remembering(check: Callable[[str], bool], good: set[str]) -> Callable[[str], bool]:
    """The check, remembering the cells it passed (up to the memo limit)."""

    def checked(cell: str) -> bool:
        ok = check(cell)
        if ok and len(good) < MEMO_LIMIT:
            good.add(cell)
        return ok

    return checked


class Columns:
    """Score a block of plain CSV lines column by column: the fast path without a Python
    step per row.

    Each column of the block is mapped through C-level iterators (``map``, ``zip``): the
    cells of each block of items (``FastRows``' blocks) to a packed code (``sum * PACK +
    answered``), a row's codes to its score text (in one look-up with three blocks or
    fewer, else added up scale by scale, each scale's code to its CSV text through the memo
    ``FastRows`` fills), and every line joined at once. A block is taken only when every
    one of its rows is the common case: the header's width, every answer a plain scale
    value or blank, at least one answer, id cells already found fine, pass-through cells
    that need no quoting and start no formula. Otherwise ``score`` names the rows that are
    not, and the caller reads those row by row and scores the runs between them as blocks
    again, so the output is byte for byte the row-by-row path's (tests compare them).
    Only for scales of whole numbers (the codes add exactly).
    """

    def __init__(
        self,
        rows: FastRows,
        width: int,
        items: Sequence[int],
        keep: Sequence[int],
        delimiter: str,
        id_checks: dict[int, Callable[[str], bool]],
        tail: str,
        client_col: int | None = None,
    ) -> None:
        self.client_col = client_col  # a block with a client id too long to keep: row by row
        scorer = rows.scorer
        self.width, self.delimiter, self.tail = width, delimiter, tail
        self.keep = list(keep)
        self.checks = [(col, check, set[str]()) for col, check in sorted(id_checks.items())]
        # per block of items (FastRows' blocks): its cells -> packed code, None if odd
        self.block_codes = [
            Remembered(partial(_block_code, rows, i), BLOCK_CODES) for i in range(len(rows.blocks))
        ]
        self.block_columns = [[items[p] for p in block] for block in rows.blocks]
        self.scales = [members for _, members, _, _ in rows.plans]  # blocks, per scale
        # per scale: packed code -> its CSV text, and its flags (a whole-number scale has
        # few codes: all kept)
        self.memos = [
            Remembered(partial(_scale_part, rows, j, TEXT), BLOCK_CODES)
            for j in range(len(scorer.plans))
        ]
        self.flag_memos = [
            Remembered(partial(_scale_part, rows, j, FLAGS), BLOCK_CODES)
            for j in range(len(scorer.plans))
        ]
        flagged = [j for j, p in enumerate(scorer.plans) if p.id in scorer.cutoffs]
        self.flagged = flagged
        self.longest = csv.field_size_limit()  # a line within it holds no longer field
        self.quoted = False  # set once a block held a quote or a bare carriage return
        self.saver: Any = None  # with --save: what builds the stored rows (store FastRows)
        # a pass-through cell that starts a formula, or holds a comma (with another
        # delimiter): the careful path neutralises or quotes it
        self.risky = frozenset("".join(FORMULA_START))
        self.commas = delimiter != ","
        self.unchecked = [k for k in self.keep if k not in id_checks]
        # with three blocks or fewer, the blocks' codes together (a few thousand
        # combinations for a typical form) map to the whole score text at once
        self.whole = Remembered(self._whole, BLOCK_CODES * 4) if len(rows.blocks) <= 3 else None

    def score(self, lines: list[str]) -> tuple[str, list[Any]] | list[int]:
        """(the output text, the rows to store with --save) of a block of lines (each a
        whole record, ending in a newline but perhaps the last), or the positions of the
        rows in it to read row by row (every one once a line holds a quote or a bare
        carriage return: see ``quoted``)."""
        if max(map(len, lines)) > self.longest:  # a cell may pass the csv module's limit
            return [i for i, line in enumerate(lines) if len(line) > self.longest]
        text = "".join(lines)
        if "\0" in text:  # a NUL byte: that row is read on its own (an id holding one is refused)
            return [i for i, line in enumerate(lines) if "\0" in line]
        if '"' in text or "\r" in text:
            if '"' in text or text.count("\r") != text.count("\r\n"):
                self.quoted = True  # a record may span lines, or a bare CR ends one
                return list(range(len(lines)))
            text = text.replace("\r\n", "\n")  # CRLF: the lines are the same
        body = text[:-1] if text.endswith("\n") else text
        rows = list(map(str.split, body.split("\n"), repeat(self.delimiter)))
        if set(map(len, rows)) != {self.width}:  # a blank line, or a row of another width
            return [i for i, row in enumerate(rows) if len(row) != self.width]
        cols = list(zip(*rows, strict=True))
        if self.client_col is not None and max(map(len, cols[self.client_col])) > MAX_ID_CHARS:
            return [i for i, cell in enumerate(cols[self.client_col]) if len(cell) > MAX_ID_CHARS]
        for col, check, good in self.checks:
            bad = set()
            for cell in set(cols[col]) - good:
                # fine, and written as it is: no formula start, nothing to quote
                if not check(cell) or not self._plain(cell):
                    bad.add(cell)
                elif len(good) < MEMO_LIMIT:
                    good.add(cell)
            if bad:
                return [i for i, cell in enumerate(cols[col]) if cell in bad]
        codes: list[list[int]] = []
        for table, columns in zip(self.block_codes, self.block_columns, strict=True):
            keys = zip(*(cols[c] for c in columns), strict=True) if len(columns) > 1 else None
            mapped = list(map(table.__getitem__, keys or cols[columns[0]]))
            if None in mapped:  # text the tables do not hold: the full parser reads it
                return [i for i, code in enumerate(mapped) if code is None]
            codes.append(cast(list[int], mapped))
        if self.whole is not None:  # a few blocks: one look-up gives every scale's text
            combos: Iterable[Any] = zip(*codes, strict=True) if len(codes) > 1 else codes[0]
            found = list(map(self.whole.__getitem__, combos))
            if None in found:  # no answer at all: not administered, counted row by row
                return [i for i, text in enumerate(found) if text is None]
            scores = cast(list[str], found)
        else:
            scores, odd = self._scales(codes)
            if odd:
                return odd
        for k in self.unchecked:  # (id columns were checked above)
            column = cols[k]
            if not self.risky.isdisjoint(map(_FIRST, column)) or (
                self.commas and "," in "".join(column)
            ):
                return [i for i, t in enumerate(column) if not self._plain(t)]
        stored: list[Any] = []
        if self.saver is not None:
            stored, odd = self.saver.rows_of(cols, scores)
            if odd:
                return cast(list[int], odd)
        out = map(",".join, zip(*(cols[k] for k in self.keep), scores, repeat(self.tail)))
        return "\n".join(out) + "\n", stored

    def _plain(self, cell: str) -> bool:
        """Whether a pass-through cell is written as it is: no formula start, nothing to
        quote (a comma, with another delimiter)."""
        return cell[:1] not in self.risky and not (self.commas and "," in cell)

    def _scales(self, codes: list[list[int]]) -> tuple[list[str], list[int]]:
        """(each row's score text from its blocks' codes, scale by scale, []), or ([], the
        rows that answer nothing: not administered, counted row by row)."""
        texts: list[Iterable[str]] = []
        flags: list[list[str]] = []
        for j, members in enumerate(self.scales):
            total = codes[members[0]]
            for m in members[1:]:
                total = list(map(add, total, codes[m]))
            if j == len(self.scales) - 1 and 0 in map(_ANSWERED.__and__, total):
                return [], [i for i, code in enumerate(total) if not code & _ANSWERED]
            texts.append(list(map(self.memos[j].__getitem__, total)))
            if j in self.flagged:
                flags.append(list(map(self.flag_memos[j].__getitem__, total)))
        if not flags:
            flag_texts: Iterable[str] = repeat("")
        elif len(flags) == 1:
            flag_texts = flags[0]
        else:
            flag_texts = map(_join_flags, *flags)
        return list(map(",".join, zip(*texts, flag_texts, strict=False))), []

    def _whole(self, key: Any) -> str | None:
        """The score text of one combination of block codes, or None if it answers
        nothing (for ``whole``: the same texts ``_scales`` gives)."""
        codes = [[c] for c in key] if isinstance(key, tuple) else [[key]]
        scores, _ = self._scales(codes)
        return scores[0] if scores else None


_ANSWERED = PACK - 1  # the answered count of a packed code (PACK is a power of two)
_FIRST = itemgetter(slice(0, 1))  # a cell's first character ("" for an empty cell)
BLOCK_CODES = 1 << 14  # entries in one block's table of codes (memory stays flat)


def _join_flags(*flags: str) -> str:
    return ";".join([f for f in flags if f])


def _block_code(rows: FastRows, index: int, key: Any) -> int | None:
    """A block's cells (a tuple, or one cell) -> packed code; None when a cell is odd."""
    found = rows._block(index, key)
    return None if found is None else int(found[0]) * PACK + found[1]


def _scale_part(rows: FastRows, index: int, part: int, code: int) -> str:
    """A scale's CSV text (or its flags) for a packed code, from ``FastRows``' memo entry."""
    return str(rows._fill_scale(index, code)[part] or "")
