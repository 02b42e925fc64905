"""Safe YAML reading with a line number for every path: size limit and alias-bomb guard.

Imported only when an instrument file must really be parsed (not on a cache hit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from alliance_cli.core.errors import DataFileError, InstrumentInvalid, Problem
from alliance_cli.io.files import MAX_DEFINITION_BYTES, read_at_most

MAX_NODES = 100_000  # nodes after alias expansion: far above any real instrument
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Loc = tuple[str | int | float, ...]


def line_map(node: yaml.Node) -> tuple[dict[Loc, int], int]:
    """Map each YAML path to its 1-based line; also count nodes with aliases expanded."""
    lines: dict[Loc, int] = {}
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        # Memoised on node identity: an alias is the same node object, so a "billion
        # laughs" document is measured in linear time without being expanded.
        key = id(n)
        if key not in sizes:
            sizes[key] = 0  # guards against recursive aliases
            if isinstance(n, yaml.MappingNode):
                sizes[key] = 1 + sum(size(k) + size(v) for k, v in n.value)
            elif isinstance(n, yaml.SequenceNode):
                sizes[key] = 1 + sum(size(v) for v in n.value)
            else:
                sizes[key] = 1
        return sizes[key]

    total = size(node)
    if total > MAX_NODES:
        return lines, total

    def walk(n: yaml.Node, loc: Loc) -> None:
        lines.setdefault(loc, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key: Any = k.value
                if isinstance(k, yaml.ScalarNode) and k.tag.endswith(":int"):
                    key = int(key)
                lines.setdefault((*loc, key), k.start_mark.line + 1)
                lines.setdefault((*loc, str(key)), k.start_mark.line + 1)
                walk(v, (*loc, key))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*loc, i))

    walk(node, ())
    return lines, total


def duplicate_keys(node: yaml.Node) -> list[tuple[Loc, str, int]]:
    """Keys given twice in one mapping, (path, key, line of the second): YAML's "last one
    wins" would silently drop the first."""
    found: list[tuple[Loc, str, int]] = []
    seen_nodes: set[int] = set()

    def walk(n: yaml.Node, loc: Loc) -> None:
        if id(n) in seen_nodes:  # an alias: its node was walked where it was defined
            return
        seen_nodes.add(id(n))
        if isinstance(n, yaml.MappingNode):
            keys: set[str] = set()
            for k, v in n.value:
                key = str(k.value)
                if key in keys:
                    found.append((loc, key, k.start_mark.line + 1))
                keys.add(key)
                walk(v, (*loc, key))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*loc, i))

    walk(node, ())
    return found


def line_for(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of the deepest part of loc that the file has."""
    for end in range(len(loc), -1, -1):
        prefix = loc[:end]
        if prefix in lines:
            return lines[prefix]
        alt = tuple(float(p) if isinstance(p, int) else p for p in prefix)
        if alt in lines:
            return lines[alt]
    return None


def format_loc(loc: Loc) -> str:
    """Render a location the way a user would write it: ``subscales[1].items[2]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, float):
            out += f"[{part:g}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def read_yaml(path: Path, shown: str | None = None) -> tuple[Any, dict[Loc, int], bytes]:
    """Safely parse one YAML file: size limit, alias-bomb guard, line numbers for paths."""
    name = shown or str(path)
    try:
        raw = read_at_most(path, MAX_DEFINITION_BYTES)  # (a device: refused, not held)
    except OSError as exc:
        raise DataFileError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_DEFINITION_BYTES:
        raise InstrumentInvalid(
            [
                Problem(
                    name,
                    None,
                    "",
                    f"file is larger than {MAX_DEFINITION_BYTES // 1024} KiB; refused",
                )
            ]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InstrumentInvalid(
            [Problem(name, None, "", f"not UTF-8 text (byte {exc.start})")]
        ) from None
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise InstrumentInvalid([Problem(name, 1, "", "file is empty")])
            lines, size = line_map(node)
            if size > MAX_NODES:
                raise InstrumentInvalid(
                    [Problem(name, None, "", f"aliases expand to over {MAX_NODES} nodes; refused")]
                )
            twice = duplicate_keys(node)
            if twice:
                raise InstrumentInvalid(
                    [
                        Problem(name, line, format_loc(loc), f"key {key!r} is given twice")
                        for loc, key, line in twice
                    ]
                )
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        raise InstrumentInvalid([Problem(name, line, "", f"YAML syntax: {what}")]) from None
    except yaml.YAMLError as exc:
        raise InstrumentInvalid([Problem(name, None, "", f"YAML: {exc}")]) from None
    return data, lines, raw
