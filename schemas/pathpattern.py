"""Connection path patterns: ``*`` and ``?`` stay inside one folder, ``**`` (a whole folder name)
is any number of folders, ``[abc]`` / ``[!abc]`` one character of a set, as in shell globs.

``overlap`` decides whether some file could match two patterns, so `connections apply` can refuse
two connections that would fight over a file (the watcher refuses such a file; nobody imports it).
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

ANY_DEPTH = "**"

# A token of one folder name: "*", or a one-character matcher: ("lit", c), ("set", chars, negated), ("?",).
_Token = tuple[object, ...]


@lru_cache(maxsize=512)
def compiled(pattern: str) -> re.Pattern[str]:
    out, parts = [], pattern.split("/")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == ANY_DEPTH:
            out.append(".*" if last else "(?:[^/]+/)*")
            continue
        out.append("".join(_token_regex(t) for t in _tokens(part)) + ("" if last else "/"))
    return re.compile("".join(out), re.DOTALL)


def matches(pattern: str, path: str) -> bool:
    return compiled(pattern).fullmatch(path) is not None


def overlap(a: str, b: str) -> bool:
    """True when some path matches both patterns."""
    return _paths_meet(tuple(a.split("/")), tuple(b.split("/")))


@cache
def _paths_meet(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if not a or not b:
        return all(p == ANY_DEPTH for p in a + b)
    if a[0] == ANY_DEPTH:
        return _paths_meet(a[1:], b) or _paths_meet(a, b[1:])
    if b[0] == ANY_DEPTH:
        return _paths_meet(a, b[1:]) or _paths_meet(a[1:], b)
    return _names_meet(_tokens(a[0]), _tokens(b[0])) and _paths_meet(a[1:], b[1:])


@cache
def _names_meet(a: tuple[_Token, ...], b: tuple[_Token, ...]) -> bool:
    if not a or not b:
        return all(t == ("*",) for t in a + b)
    if a[0] == ("*",):
        return _names_meet(a[1:], b) or _names_meet(a, b[1:])
    if b[0] == ("*",):
        return _names_meet(a, b[1:]) or _names_meet(a[1:], b)
    return _chars_meet(a[0], b[0]) and _names_meet(a[1:], b[1:])


def _chars_meet(a: _Token, b: _Token) -> bool:
    if a == ("?",) or b == ("?",):
        return True
    if a[0] == "lit" and b[0] == "lit":
        return a[1] == b[1]
    if a[0] == "lit":
        a, b = b, a
    if b[0] == "lit":  # a is a set
        chars, negated = a[1], a[2]
        assert isinstance(chars, frozenset)
        return (b[1] in chars) != negated
    chars_a, neg_a, chars_b, neg_b = a[1], a[2], b[1], b[2]
    assert isinstance(chars_a, frozenset) and isinstance(chars_b, frozenset)
    if neg_a and neg_b:
        return True  # the alphabet is larger than any two sets
    if neg_a:
        return bool(chars_b - chars_a)
    if neg_b:
        return bool(chars_a - chars_b)
    return bool(chars_a & chars_b)


@cache
def _tokens(name: str) -> tuple[_Token, ...]:
    tokens: list[_Token] = []
    i = 0
    while i < len(name):
        c = name[i]
        if c == "*":
            if not tokens or tokens[-1] != ("*",):
                tokens.append(("*",))
        elif c == "?":
            tokens.append(("?",))
        elif c == "[" and (end := name.find("]", i + 2)) != -1:
            body = name[i + 1 : end]
            negated = body.startswith("!")
            tokens.append(("set", _chars(body[1:] if negated else body), negated))
            i = end
        else:
            tokens.append(("lit", c))
        i += 1
    return tuple(tokens)


def _chars(body: str) -> frozenset[str]:
    chars: set[str] = set()
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            chars.update(chr(x) for x in range(ord(body[i]), ord(body[i + 2]) + 1))
            i += 3
        else:
            chars.add(body[i])
            i += 1
    return frozenset(chars)


def _token_regex(t: _Token) -> str:
    if t == ("*",):
        return "[^/]*"
    if t == ("?",):
        return "[^/]"
    if t[0] == "lit":
        return re.escape(str(t[1]))
    chars = t[1]
    assert isinstance(chars, frozenset)
    body = "".join(re.escape(c) for c in sorted(chars))
    return f"[^/{body}]" if t[2] else f"[{body}]"
