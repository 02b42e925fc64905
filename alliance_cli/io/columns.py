"""Which CSV column holds which item: automatic detection, a template, or a mapping file."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from alliance_cli.core.errors import DataFileError, UsageProblem

_NUMBERED = re.compile(r"^(.*?)0*(\d+)([^\d]*)$")


def _strip_zeros(item: str) -> str:
    return item.lstrip("0") or "0" if item.isdigit() else item.lower()


_FIELD = re.compile(r"\{item(?:\s*([+-])\s*(\d+))?(?::([^{}]*))?\}")


def from_template(header: Sequence[str], items: Sequence[str], template: str) -> list[int]:
    """Item columns named by a template: ``wai_{item}``; ``{item:02}`` pads numbers;
    ``Q{item+4}`` when item 1 is in column Q5. Names match in any case (``q{item}`` finds
    ``Q1``) when the exact case is not there."""
    if not _FIELD.search(template):
        raise UsageProblem(
            "--columns needs '{item}' in it, e.g. 'wai_{item}', 'Q{item:02}' or 'Q{item+4}'"
        )
    if "*" in template:
        return _from_glob(header, items, template)
    lowered = [h.lower() for h in header]
    positions, missing = [], []
    for item in items:
        name = _fill(template, item)
        if name in header:
            positions.append(list(header).index(name))
        elif name.lower() in lowered and lowered.count(name.lower()) == 1:
            positions.append(lowered.index(name.lower()))
        else:
            missing.append(f"{item} (expected {name!r})")
    if missing:
        raise UsageProblem(_no_column(missing))
    return positions


def _from_glob(header: Sequence[str], items: Sequence[str], template: str) -> list[int]:
    """A template with ``*`` (any text): ``'{item}. *'`` finds question-text headers such as
    ``1. I feel that…``; each item must match exactly one column (any case)."""
    positions, missing, many = [], [], []
    for item in items:
        name = _fill(template, item)
        pattern = re.compile(
            "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", name)),
            re.IGNORECASE | re.DOTALL,
        )
        found = [i for i, h in enumerate(header) if pattern.fullmatch(h.strip())]
        if len(found) == 1:
            positions.append(found[0])
        elif found:
            many.append(f"{item} ({len(found)} columns match {name!r})")
        else:
            missing.append(f"{item} (expected {name!r})")
    if many:
        raise UsageProblem(
            f"--columns {_short(template)}: more than one column for item "
            + ", ".join(many[:3])
            + "; make the template longer"
        )
    if missing:
        raise UsageProblem(_no_column(missing))
    return positions


def suggest_map(header: Sequence[str], items: Sequence[str], source: str, instrument: str) -> str:
    """A starter ``--map`` file (YAML) from a header, for a person to check: for each item
    the column whose name carries the item's number first (``1. I feel…``, ``Q1_1``, ``wai1``);
    ``null`` where none does."""
    import json

    lines = [
        f"# A starter --map for {instrument}, guessed from the header of {source}.",
        "# Check every line against the form before scoring with it: a guess is not a key.",
        "# Then: alliance batch FILE -i " + instrument + " --map THIS_FILE",
        "items:",
    ]
    for item in items:
        number = _strip_zeros(item)
        pattern = re.compile(r"^\D{0,12}?0*" + re.escape(number) + r"(?!\d)", re.IGNORECASE)
        found = [h for h in header if pattern.match(h.strip())]
        if len(found) == 1:
            lines.append(
                f"  {json.dumps(item)}: {json.dumps(found[0].strip(), ensure_ascii=False)}"
            )
        elif found:
            shown = ", ".join(json.dumps(f.strip(), ensure_ascii=False) for f in found[:3])
            lines.append(f"  {json.dumps(item)}: null  # more than one: {shown}")
        else:
            lines.append(f"  {json.dumps(item)}: null  # no column found: write its name")
    lines.append("# recode: '0-4:1-5'   (answer codes to scale values, if the export needs it)")
    return "\n".join(lines) + "\n"


MAX_TEMPLATE_WIDTH = 64  # a {item:…} width beyond any real column name


def _short(text: str, most: int = 60) -> str:
    """A text for a message, cut to ``most`` characters."""
    return repr(text if len(text) <= most else text[:most] + "…")


def _fill(template: str, item: str) -> str:
    """The column name a template gives one item."""

    def one(match: re.Match[str]) -> str:
        sign, offset, spec = match.groups()
        if sign and not item.isdigit():
            raise UsageProblem(
                f"--columns {template!r}: {{item{sign}{offset}}} needs numbered items; "
                f"this instrument has item {item!r}"
            )
        value: int | str = int(item) if item.isdigit() else item
        widths = [int(w) for w in re.findall(r"\d+", spec or "")]
        if any(w > MAX_TEMPLATE_WIDTH for w in widths) or len(offset or "") > 9:
            raise UsageProblem(
                f"--columns {_short(template)}: a width or offset over {MAX_TEMPLATE_WIDTH} "
                "(column names are not that long)"
            )
        if sign:
            value = int(item) + (int(offset) if sign == "+" else -int(offset))
        try:
            return format(value, spec or "")
        except ValueError:
            raise UsageProblem(
                f"--columns {template!r}: {spec!r} is not a format for item {item!r} "
                "(e.g. {item:02} pads to two digits)"
            ) from None

    return (
        _FIELD.sub(one, template.replace("{{", "\0").replace("}}", "\1"))
        .replace("\0", "{")
        .replace("\1", "}")
    )


def _no_column(missing: list[str]) -> str:
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return f"no column for item {shown}"


def from_map(header: Sequence[str], items: Sequence[str], map_file: Path) -> list[int]:
    """Item columns from a YAML file ``{item id: column name}`` (read with the safe YAML
    reader: size limit, alias-bomb guard, line numbers)."""
    from alliance_cli.core.errors import InstrumentInvalid
    from alliance_cli.io.yamlfile import read_yaml

    try:
        data, _, _ = read_yaml(map_file)
    except InstrumentInvalid as exc:
        problem = exc.problems[0]
        where = f"{problem.file}:{problem.line}" if problem.line else problem.file
        what = problem.message.removeprefix("YAML syntax: ")
        raise DataFileError(f"{where}: not valid YAML for a --map file ({what})") from None
    if isinstance(data, dict) and "items" in data and set(data) <= {"items", "recode"}:
        data = data["items"]
    if not isinstance(data, dict):
        raise DataFileError(f"{map_file}: expected a mapping of item id to column name")
    empty = [str(k) for k, v in data.items() if v is None or str(v).strip() == ""]
    if empty:
        raise UsageProblem(
            f"{map_file}: no column given for item {', '.join(empty[:5])}"
            f"{' and more' if len(empty) > 5 else ''} (a starter map leaves null where it found "
            "none: write the column's name)"
        )
    mapping = {str(k): str(v) for k, v in data.items()}
    unknown = sorted(set(mapping) - set(items))
    if unknown:
        raise DataFileError(f"{map_file}: no item {', '.join(unknown)} in this instrument")
    return from_mapping(header, items, mapping, map_file.name)


def map_recode(map_file: Path) -> dict[str, str] | None:
    """The ``recode:`` entry of a --map file (``'0-4:1-5'``, or a mapping code: value)."""
    from alliance_cli.core.errors import InstrumentInvalid
    from alliance_cli.io.layouts import parse_recode
    from alliance_cli.io.yamlfile import read_yaml

    try:
        data, _, _ = read_yaml(map_file)
    except InstrumentInvalid:
        return None  # from_map reports it
    if not isinstance(data, dict) or "recode" not in data or "items" not in data:
        return None
    recode = data["recode"]
    if isinstance(recode, dict):
        return {str(k).strip(): str(v).strip() for k, v in recode.items()}
    return parse_recode(str(recode), f"{map_file}: recode")


def from_mapping(
    header: Sequence[str], items: Sequence[str], mapping: Mapping[str, str], source: str
) -> list[int]:
    """Item columns from ``{item id: column name}``; every item must have its column."""
    unknown = sorted(set(mapping) - set(items))
    if unknown:
        raise UsageProblem(f"{source}: no item {', '.join(unknown)} in this instrument")
    positions, missing = [], []
    for item in items:
        column = mapping.get(item)
        if column is None:
            missing.append(f"{item} (not in {source})")
        elif column not in header:
            missing.append(f"{item} (column {column!r} is not in the file)")
        else:
            positions.append(list(header).index(column))
    if missing:
        raise UsageProblem(_no_column(missing))
    return positions


# Prefixes a found family of item columns may carry: none, a generic word (or a survey
# tool's question id: Qualtrics' Q1_ of a matrix question), or (checked by the caller's
# list) an alliance instrument's own name. Anything else (pmq1..pmq4) is some
# other questionnaire's columns until a template or a map says otherwise.
GENERIC_PREFIXES = {"", "q", "item", "items", "i", "question", "answer", "a", "v", "var"}


def never_an_item(name: str) -> bool:
    """Columns that are never items, whatever their number: REDCap checkbox choices
    (``name___code``), form status (``*_complete``) and timestamps."""
    text = name.strip().lower()
    return "___" in text or text.endswith(("_complete", "_timestamp", "complete?"))


def detect(
    header: Sequence[str],
    items: Sequence[str],
    own_names: Sequence[str] | None = None,
    extra: list[str] | None = None,
    never: frozenset[str] = frozenset(),
) -> list[int]:
    """Find item columns named by item id with one common prefix and suffix.

    ``1..12``, ``item1``, ``wai_1``, ``Q01`` and ``wai_sr_1`` all work. Stops with a clear
    error when no family of columns covers every item, or when two do. Checkbox, status and
    timestamp columns are never items; with ``own_names`` (the instrument ids alliance
    knows), a family whose prefix is neither generic nor one of those names is not taken
    on its own: ``pmq1..pmq4`` are not an SRS's items until ``--columns`` or ``--map`` says so.
    """
    wanted = [_strip_zeros(i) for i in items]
    families: dict[tuple[str, str], dict[str, int]] = {}
    for pos, name in enumerate(header):
        text = name.strip()
        if never_an_item(text) or text in never:
            continue
        match = _NUMBERED.match(text)
        if match:
            prefix, number, suffix = match.groups()
            key = (prefix.lower(), suffix.lower())
            families.setdefault(key, {}).setdefault(number.lstrip("0") or "0", pos)
        for item in wanted:  # non-numeric item ids: exact name or prefix_item
            if not item.isdigit() and text.lower().endswith(item):
                prefix = text.lower()[: -len(item)]
                families.setdefault((prefix, ""), {}).setdefault(item, pos)
    complete = [key for key, cols in families.items() if all(w in cols for w in wanted)]
    if len(complete) == 1:
        cols = families[complete[0]]
        beyond = sorted((n for n in cols if n not in wanted), key=lambda n: (len(n), n))
        if beyond and extra is not None:  # (long format: their response sets are rejected)
            extra.extend(header[cols[n]] for n in beyond)
        elif beyond:
            # wai_1..wai_12 read as a 4-item form would score the wrong questionnaire quietly.
            prefix, suffix = _as_written(header, cols, complete[0])
            raise UsageProblem(
                f"the file has item columns beyond this instrument's {len(wanted)} items "
                f"({', '.join(header[cols[n]] for n in beyond[:3])}"
                f"{', …' if len(beyond) > 3 else ''}): is it another questionnaire? "
                f"If not, name the columns with --columns '{prefix}{{item}}{suffix}' or --map"
            )
        if own_names is not None:
            base = re.sub(r"[^a-z0-9]", "", complete[0][0])
            own = {re.sub(r"[^a-z0-9]", "", n.lower()) for n in own_names}
            generic = base in GENERIC_PREFIXES or re.fullmatch(r"(q|qid|question|item)\d+", base)
            if not generic and not any(n.startswith(base) for n in own):
                prefix, suffix = _as_written(header, cols, complete[0])
                raise UsageProblem(
                    f"the columns {prefix}{wanted[0]}{suffix} … {prefix}{wanted[-1]}{suffix} "
                    f"fit this instrument's item numbers, but {prefix!r} names no alliance "
                    "instrument: if they are its items, say so with --columns "
                    f"'{prefix}{{item}}{suffix}' (or --map)"
                )
        return [cols[w] for w in wanted]
    if len(complete) > 1:
        names = [
            "'{}<item>{}'".format(*_as_written(header, families[key], key)) for key in complete
        ]
        which = (
            f"{names[0]} and {names[1]} both"
            if len(names) == 2
            else f"{', '.join(names[:-1])} and {names[-1]} all"
        )
        raise UsageProblem(
            f"item columns are ambiguous: {which} fit; "
            "choose with --columns 'PREFIX{item}' or --map FILE.yaml"
        )
    best = max(families.items(), key=lambda kv: sum(w in kv[1] for w in wanted), default=None)
    if best is None or not any(w in best[1] for w in wanted):
        if extra is not None:  # long format: the items are rows, not columns
            raise UsageProblem(
                f"no row of the item column names an item of this form ({', '.join(items)}): "
                "is it another questionnaire, or is the item column another (--item-column)?"
            )
        raise UsageProblem(
            f"no item columns found for items {', '.join(items)} "
            f"(columns: {', '.join(header)}); name them with --columns or --map"
        )
    (prefix, suffix), cols = best
    lacking = [i for i, w in zip(items, wanted, strict=True) if w not in cols]
    candidates = ", ".join(header[p] for p in sorted(cols.values()))
    if extra is not None:  # long format: the items are rows, not columns
        raise UsageProblem(
            f"items {', '.join(lacking)} are in no row of the item column (the item names "
            f"it has: {candidates}): is it another questionnaire?"
        )
    raise UsageProblem(
        f"items {', '.join(lacking)} have no column; columns that look like items: "
        f"{candidates}; name them with --columns or --map"
    )


def _as_written(
    header: Sequence[str], cols: dict[str, int], key: tuple[str, str]
) -> tuple[str, str]:
    """A family's prefix and suffix as the header spells them (``Q`` in ``Q1``, not ``q``)."""
    name = header[next(iter(cols.values()))].strip()
    match = _NUMBERED.match(name)
    if match is None:
        return key
    return match.group(1), match.group(3)


def foreign_instrument(
    header: Sequence[str],
    pos: int,
    scoring: str,
    known: Sequence[str],
    item_count: Callable[[str], int | None],
) -> str | None:
    """The id of another instrument that the item column at pos is named for, or None.

    ``wai_sr_1..12`` scored as ``wai-s`` is a mix-up that gives plausible wrong numbers. The
    prefix is evidence only when it is another instrument's full id *and* the file has
    exactly that instrument's number of columns with it: ``wai_1..wai_12`` is a generic
    prefix (the 36-item WAI has 36), as are ``q`` and ``item`` (no instrument's id).
    """
    match = _NUMBERED.match(header[pos].strip())
    if match is None:
        return None
    prefix = _plain(match.group(1))
    if not prefix:
        return None
    for other in known:
        if other == scoring or _plain(other) != prefix:
            continue
        if scoring.startswith(other + "-"):
            return None  # the family's prefix, e.g. wai_ for wai-sr
        family = {
            m.group(2).lstrip("0")
            for m in (_NUMBERED.match(h.strip()) for h in header)
            if m is not None and _plain(m.group(1)) == prefix
        }
        return other if len(family) == item_count(other) else None
    return None


def _plain(name: str) -> str:
    """A name reduced to lower-case words joined by '_' (``WAI-SR `` -> ``wai_sr``)."""
    return "_".join(re.findall(r"[a-z0-9]+", name.lower()))


def instruments_fitting(header: Sequence[str], instruments: dict[str, list[str]]) -> list[str]:
    """The instruments (id: item ids) whose items ``detect`` finds in a header, every one
    and none beyond: what a batch without ``-i`` may have meant."""
    fitting = []
    known = sorted(instruments)
    counts = {i: len(items) for i, items in instruments.items()}
    for inst_id in known:
        try:
            found = detect(header, instruments[inst_id], own_names=known)
        except UsageProblem:
            continue
        if found and foreign_instrument(header, found[0], inst_id, known, counts.get):
            continue  # wai_sr_1..12 are not a WAI-S's items
        fitting.append(inst_id)
    return fitting


def instruments_fitting_file(
    name: str, instruments: dict[str, list[str]], encoding: str, delimiter: str | None
) -> list[str]:
    """``instruments_fitting`` of a file's header, read as a batch reads it (a Qualtrics
    export's header rows: its legacy V1..V10 are metadata, never items)."""
    from alliance_cli.io import layouts
    from alliance_cli.io.csvin import open_input, parse_delimiter, read_header

    handle = open_input(name, encoding)
    try:
        header, sep, _ = read_header(handle, name, parse_delimiter(delimiter))
        if layouts.recognise_header(header) == "qualtrics":
            header = layouts.qualtrics_header_rows(header, handle, sep)[0]
    finally:
        handle.close()
    return instruments_fitting(header, instruments)
