#!/usr/bin/env python3
"""Generate `crates/clip-preprocess/src/text/generated/ftfy_tables.rs` from the Python reference.

The Rust port of `ftfy.fix_text` / `html.unescape` in
`crates/clip-preprocess/src/text/ftfy.rs` must be bit-exact with the Python
implementation that open_clip's tokenizer uses, so every piece of data it needs
(character classes, the badness regex, codec tables, the HTML5 entity table,
...) is extracted here from the *running* Python modules rather than copied by
hand. Python regexes are translated to Rust `regex` syntax from their parse
trees, with Python's own Unicode 14 notion of `\\s`, `\\w` and `\\d` expanded into
explicit code point ranges.

Pinned reference: ftfy==6.3.1 on CPython 3.11 (unicodedata 14.0.0).

The file's header carries a hash of the rest (`tools/generated_header.py`), which `cargo test`
checks: change this script and run it again rather than editing the file.

Usage (from the repository root):

    . ../venv/bin/activate   # any venv outside the repository with `pip install ftfy==6.3.1 blake3==1.0.11`
    python tools/ftfy/gen_tables.py [output.rs]
"""

from __future__ import annotations

import codecs
import html
import html.entities
import os
import re
import sys
import unicodedata

import ftfy
import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-* and utf-8-variants codecs)
from ftfy import badness, chardata, fixes
from ftfy.bad_codecs import utf8_variants

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from generated_header import with_header  # noqa: E402

try:  # Python >= 3.11
    import re._constants as sre_c
    import re._parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as sre_c  # type: ignore
    import sre_parse  # type: ignore

# ftfy==6.3.1
assert ftfy.__version__ == "6.3.1", f"expected ftfy 6.3.1, found {ftfy.__version__}"
assert sys.version_info[:2] == (3, 11), f"expected CPython 3.11, found {sys.version}"
assert unicodedata.unidata_version == "14.0.0", unicodedata.unidata_version

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "crates/clip-preprocess/src/text/generated/ftfy_tables.rs")
MAX_CP = 0x110000

# ---------------------------------------------------------------------------
# Python's own character categories (str patterns, re.UNICODE)
# ---------------------------------------------------------------------------


def _brute_force_set(pattern: str) -> frozenset[int]:
    rx = re.compile(pattern)
    return frozenset(
        c for c in range(MAX_CP) if not 0xD800 <= c <= 0xDFFF and rx.match(chr(c))
    )


PY_SPACE = _brute_force_set(r"\s")
PY_WORD = _brute_force_set(r"\w")
PY_DIGIT = _brute_force_set(r"\d")
assert PY_SPACE == frozenset(
    c for c in range(MAX_CP) if not 0xD800 <= c <= 0xDFFF and chr(c).isspace()
)

CATEGORY_SETS = {
    sre_c.CATEGORY_SPACE: PY_SPACE,
    sre_c.CATEGORY_WORD: PY_WORD,
    sre_c.CATEGORY_DIGIT: PY_DIGIT,
    sre_c.CATEGORY_NOT_SPACE: None,
    sre_c.CATEGORY_NOT_WORD: None,
    sre_c.CATEGORY_NOT_DIGIT: None,
}


def to_ranges(cps) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for c in sorted(set(cps)):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return [(a, b) for a, b in out]


# ---------------------------------------------------------------------------
# Python regex -> Rust `regex` syntax, through the sre parse tree
# ---------------------------------------------------------------------------


class RegexTranslator:
    """Translate a (lookaround-free) Python regex into Rust `regex` syntax.

    Every literal is written as an escape and every class as explicit ranges,
    so the Rust pattern does not depend on the regex crate's own Unicode
    tables (which follow a newer Unicode version than Python 3.11).
    """

    def __init__(self, is_bytes: bool):
        self.is_bytes = is_bytes

    def lit(self, c: int) -> str:
        if self.is_bytes:
            return f"\\x{c:02X}"
        if chr(c).isascii() and chr(c).isalnum():
            return chr(c)
        return f"\\x{{{c:X}}}"

    def class_set(self, items) -> tuple[bool, set[int]]:
        negate = False
        cps: set[int] = set()
        for op, av in items:
            if op is sre_c.NEGATE:
                negate = True
            elif op is sre_c.LITERAL:
                cps.add(av)
            elif op is sre_c.RANGE:
                cps.update(range(av[0], av[1] + 1))
            elif op is sre_c.CATEGORY:
                if self.is_bytes:
                    raise ValueError("categories in bytes patterns are not supported")
                s = CATEGORY_SETS.get(av)
                if s is None:
                    raise ValueError(f"unsupported category {av}")
                cps.update(s)
            else:
                raise ValueError(f"unsupported class item {op}")
        return negate, cps

    def emit_class(self, negate: bool, cps: set[int]) -> str:
        parts = []
        for a, b in to_ranges(cps):
            if a == b:
                parts.append(self.lit(a))
            else:
                parts.append(f"{self.lit(a)}-{self.lit(b)}")
        return ("[^" if negate else "[") + "".join(parts) + "]"

    def seq(self, pattern) -> str:
        return "".join(self.item(op, av) for op, av in pattern)

    def atom(self, pattern) -> str:
        """An item that a quantifier may follow."""
        if len(pattern) == 1 and pattern[0][0] in (sre_c.LITERAL, sre_c.IN, sre_c.ANY):
            return self.seq(pattern)
        return f"(?:{self.seq(pattern)})"

    def item(self, op, av) -> str:
        if op is sre_c.LITERAL:
            return self.lit(av)
        if op is sre_c.NOT_LITERAL:
            return self.emit_class(True, {av})
        if op is sre_c.IN:
            negate, cps = self.class_set(av)
            return self.emit_class(negate, cps)
        if op is sre_c.ANY:
            return "."  # like Python without DOTALL: anything but \n
        if op is sre_c.BRANCH:
            return "(?:" + "|".join(self.seq(p) for p in av[1]) + ")"
        if op is sre_c.SUBPATTERN:
            _group, add_flags, del_flags, p = av
            if add_flags or del_flags:
                raise ValueError("inline flags are not supported")
            return f"(?:{self.seq(p)})"
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            lo, hi, p = av
            if (lo, hi) == (0, sre_c.MAXREPEAT):
                q = "*"
            elif (lo, hi) == (1, sre_c.MAXREPEAT):
                q = "+"
            elif (lo, hi) == (0, 1):
                q = "?"
            elif hi == sre_c.MAXREPEAT:
                q = f"{{{lo},}}"
            elif lo == hi:
                q = f"{{{lo}}}"
            else:
                q = f"{{{lo},{hi}}}"
            if op is sre_c.MIN_REPEAT:
                q += "?"
            return self.atom(p) + q
        if op is sre_c.AT:
            if av in (sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_STRING):
                return "\\A"  # `^` without MULTILINE: start of the string only
            if av is sre_c.AT_END_STRING:
                return "\\z"
            raise ValueError(f"unsupported anchor {av} (Python `$` also matches before a final newline)")
        raise ValueError(f"unsupported regex construct {op}")

    def translate(self, rx: re.Pattern) -> str:
        if rx.flags & re.IGNORECASE or rx.flags & re.MULTILINE or rx.flags & re.DOTALL:
            raise ValueError("unsupported flags")
        tree = sre_parse.parse(rx.pattern, rx.flags)
        body = self.seq(tree)
        return ("(?-u)" + body) if self.is_bytes else body


def translate_str(rx: re.Pattern) -> str:
    assert isinstance(rx.pattern, str)
    return RegexTranslator(False).translate(rx)


def translate_bytes(rx: re.Pattern) -> str:
    assert isinstance(rx.pattern, bytes)
    return RegexTranslator(True).translate(rx)


def class_cps(cls_body: str) -> frozenset[int]:
    """The code points of the Python character class `[cls_body]`."""
    tree = sre_parse.parse(f"[{cls_body}]")
    assert len(tree) == 1, tree
    op, av = tree[0]
    if op is sre_c.LITERAL:
        return frozenset([av])
    assert op is sre_c.IN, op
    negate, cps = RegexTranslator(False).class_set(av)
    assert not negate
    # cross-check against Python's own matcher
    rx = re.compile(f"[{cls_body}]")
    for c in range(0x3000):
        assert bool(rx.fullmatch(chr(c))) == (c in cps), (cls_body, c)
    return frozenset(cps)


# ---------------------------------------------------------------------------
# Rust literal helpers
# ---------------------------------------------------------------------------


def rust_str(s: str) -> str:
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif 0x20 <= c < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\u{{{c:x}}}")
    out.append('"')
    return "".join(out)


def rust_raw(s: str) -> str:
    """A raw string literal for regex sources (which are pure ASCII here)."""
    assert s.isascii(), s
    hashes = "#"
    while f'"{hashes}' in s:
        hashes += "#"
    return f'r{hashes}"{s}"{hashes}'


def wrap(items: list[str], indent: str = "    ", width: int = 96) -> str:
    lines: list[str] = []
    cur = indent
    for it in items:
        piece = it + ","
        if len(cur) + len(piece) + 1 > width and cur.strip():
            lines.append(cur.rstrip())
            cur = indent
        cur += piece + " "
    if cur.strip():
        lines.append(cur.rstrip())
    return "\n".join(lines)


def ranges_static(name: str, doc: str, cps) -> str:
    rs = to_ranges(cps)
    items = [f"(0x{a:X}, 0x{b:X})" for a, b in rs]
    return (
        f"/// {doc}\n"
        f"pub(crate) static {name}: &[(u32, u32)] = &[\n{wrap(items)}\n];\n"
    )


def wrap_regex(name: str, doc: str, src: str) -> str:
    # Split long regex sources into `concat!` pieces at safe points (between
    # escapes), to keep the file readable.
    pieces = []
    cur = ""
    i = 0
    while i < len(src):
        # keep `\x{...}` / `\xHH` escapes whole
        if src[i] == "\\" and i + 1 < len(src):
            if src.startswith("\\x{", i):
                j = src.index("}", i) + 1
            elif src[i + 1] == "x":
                j = i + 4
            else:
                j = i + 2
        else:
            j = i + 1
        cur += src[i:j]
        i = j
        if len(cur) >= 84:
            pieces.append(cur)
            cur = ""
    if cur:
        pieces.append(cur)
    body = ",\n".join("    " + rust_raw(p) for p in pieces)
    return f"/// {doc}\npub(crate) const {name}: &str = concat!(\n{body},\n);\n"


# ---------------------------------------------------------------------------
# Data extraction
# ---------------------------------------------------------------------------


def check_pattern(rx: re.Pattern, expected) -> None:
    """Patterns that the Rust code implements by hand: fail loudly if ftfy changes them."""
    assert rx.pattern == expected, (rx.pattern, expected)


def main() -> None:
    out_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    parts: list[str] = []
    emit = parts.append

    header = (
        "// @generated by tools/ftfy/gen_tables.py -- DO NOT EDIT.\n"
        f"// Source: ftfy {ftfy.__version__} (Apache-2.0, Copyright 2023 Robyn Speer) and the\n"
        f"// `html` module of CPython {sys.version.split()[0]} (unicodedata {unicodedata.unidata_version}).\n"
        "// Regenerate with: python tools/ftfy/gen_tables.py\n"
        "//\n"
        "// Code point sets are sorted, inclusive `(first, last)` ranges; maps are sorted by key\n"
        "// for binary search. Regex sources are written for the Rust `regex` crate with every\n"
        "// character class spelled out, so they do not depend on the crate's Unicode tables.\n"
    )
    emit(
        "\n"
        "#![allow(clippy::unreadable_literal)]\n\n"
        f'/// The ftfy release these tables were extracted from.\npub(crate) const FTFY_VERSION: &str = "{ftfy.__version__}";\n'
        f'/// The Unicode version of the Python `unicodedata` these tables were extracted from.\npub(crate) const PY_UNICODE_VERSION: &str = "{unicodedata.unidata_version}";\n\n'
    )

    # ---- hand-ported patterns: make sure they are still what the Rust code assumes
    check_pattern(chardata.HTML_ENTITY_RE, r"&#?[0-9A-Za-z]{1,24};")
    check_pattern(chardata.C1_CONTROL_RE, r"[\x80-\x9f]")
    check_pattern(chardata.SINGLE_QUOTE_RE, "[\u02bc\u2018-\u201b]")
    check_pattern(chardata.DOUBLE_QUOTE_RE, "[\u201c-\u201f]")
    check_pattern(fixes.A_GRAVE_WORD_RE, b"\xc3 (?! |quele|quela|quilo|s )")
    check_pattern(fixes.ANSI_RE, "\033\\[((?:\\d|;)*)([a-zA-Z])")
    check_pattern(
        utf8_variants.SPECIAL_BYTES_RE,
        b"(\xc0(\x80|$))|(\xed([\xa0-\xaf]|$)([\x80-\xbf]|$)(\xed|$)([\xb0-\xbf]|$)([\x80-\xbf]|$))"
        b"|(\xed([\xa0-\xbf]|$)([\x80-\xbf]|$))",
    )
    assert chardata.CHARMAP_ENCODINGS == [
        "latin-1",
        "sloppy-windows-1252",
        "sloppy-windows-1251",
        "sloppy-windows-1250",
        "sloppy-windows-1253",
        "sloppy-windows-1254",
        "sloppy-windows-1257",
        "iso-8859-2",
        "macroman",
        "cp437",
    ], chardata.CHARMAP_ENCODINGS
    assert html._charref.pattern == (
        r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)"
    ), html._charref.pattern

    # ---- regexes translated from their parse trees
    emit("// ---- Regex sources -------------------------------------------------------------\n\n")
    emit(
        wrap_regex(
            "BADNESS_RE",
            "`ftfy.badness.BADNESS_RE` (only ever searched: `is_bad`).",
            translate_str(badness.BADNESS_RE),
        )
    )
    emit("\n")
    emit(
        wrap_regex(
            "ALTERED_UTF8_RE",
            "`ftfy.chardata.ALTERED_UTF8_RE` (bytes; for `regex::bytes`).",
            translate_bytes(chardata.ALTERED_UTF8_RE),
        )
    )
    emit("\n")
    emit(
        wrap_regex(
            "LOSSY_UTF8_RE",
            "`ftfy.chardata.LOSSY_UTF8_RE` (bytes; for `regex::bytes`).",
            translate_bytes(chardata.LOSSY_UTF8_RE),
        )
    )
    emit("\n")
    emit(
        wrap_regex(
            "ANSI_RE",
            "`ftfy.fixes.ANSI_RE` (Python's `\\d` is any Unicode decimal digit).",
            translate_str(fixes.ANSI_RE),
        )
    )
    emit("\n")

    # ---- character classes
    emit("// ---- Character classes ---------------------------------------------------------\n\n")
    clue_docs = {
        "utf8_first_of_2": "UTF8_FIRST_OF_2",
        "utf8_first_of_3": "UTF8_FIRST_OF_3",
        "utf8_first_of_4": "UTF8_FIRST_OF_4",
        "utf8_continuation": "UTF8_CONTINUATION",
        "utf8_continuation_strict": "UTF8_CONTINUATION_STRICT",
    }
    assert set(chardata.UTF8_CLUES) == set(clue_docs), chardata.UTF8_CLUES.keys()
    clue_sets = {}
    for key, name in clue_docs.items():
        clue_sets[key] = class_cps(chardata.UTF8_CLUES[key])
        emit(ranges_static(name, f"`ftfy.chardata.UTF8_CLUES[{key!r}]`.", clue_sets[key]))
    # The Rust side hand-implements UTF8_DETECTOR_RE on top of the clue sets.
    expected_detector = """
    (?<! [{utf8_continuation_strict}])
    (
        [{utf8_first_of_2}] [{utf8_continuation}]
        |
        [{utf8_first_of_3}] [{utf8_continuation}]{{2}}
        |
        [{utf8_first_of_4}] [{utf8_continuation}]{{3}}
    )+
    """.format(**chardata.UTF8_CLUES)
    check_pattern(chardata.UTF8_DETECTOR_RE, expected_detector)
    assert chardata.UTF8_DETECTOR_RE.flags & re.VERBOSE

    control = frozenset(chardata.CONTROL_CHARS)
    assert all(v is None for v in chardata.CONTROL_CHARS.values())
    emit(ranges_static("CONTROL_CHARS", "`ftfy.chardata.CONTROL_CHARS`: removed by `remove_control_chars`.", control))
    emit(
        ranges_static(
            "PY_WHITESPACE",
            "Python's `str.isspace()` / `re` `\\s` (Unicode 14; includes U+1C..U+1F).",
            PY_SPACE,
        )
    )
    unassigned = frozenset(
        c for c in range(MAX_CP) if unicodedata.category(chr(c)) == "Cn"
    )
    emit(
        ranges_static(
            "PY_UNASSIGNED",
            "Code points unassigned (`Cn`) in Python's Unicode 14 database: inert under its NFC.",
            unassigned,
        )
    )
    emit("\n")

    # ---- translate() maps
    emit("// ---- str.translate maps ---------------------------------------------------------\n\n")

    def map_static(name: str, doc: str, mapping: dict[int, str]) -> str:
        items = [f"(0x{k:X}, {rust_str(v)})" for k, v in sorted(mapping.items())]
        return f"/// {doc}\npub(crate) static {name}: &[(u32, &str)] = &[\n{wrap(items)}\n];\n"

    emit(map_static("LIGATURES", "`ftfy.chardata.LIGATURES`.", chardata.LIGATURES))
    emit(map_static("WIDTH_MAP", "`ftfy.chardata.WIDTH_MAP` (NFKC of U+FF01..U+FFEF, plus U+3000).", chardata.WIDTH_MAP))
    emit("\n")

    # ---- single-byte codecs
    emit("// ---- Single-byte codecs ----------------------------------------------------------\n\n")
    emit(
        "/// One of `ftfy.chardata.CHARMAP_ENCODINGS` (the sloppy codecs come from\n"
        "/// `ftfy.bad_codecs.sloppy`: unassigned bytes decode to the same-numbered code point,\n"
        "/// and byte 0x1A stands for U+FFFD).\n"
        "#[derive(Debug)]\n"
        "pub(crate) struct Charmap {\n"
        "    /// The Python codec name.\n"
        "    pub name: &'static str,\n"
        "    /// `name.startswith(\"sloppy\")`.\n"
        "    pub sloppy: bool,\n"
        "    /// What bytes 0x80..=0xFF decode to.\n"
        "    pub high: [u16; 128],\n"
        "    /// `(code point, byte)` for bytes 0x80..=0xFF and 0x1A, sorted by code point.\n"
        "    /// Every other byte below 0x80 encodes/decodes as itself.\n"
        "    pub encode: &'static [(u16, u8)],\n"
        "}\n\n"
    )
    charmap_items = []
    for enc in chardata.CHARMAP_ENCODINGS:
        dec = [bytes([b]).decode(enc) for b in range(256)]
        assert all(len(d) == 1 for d in dec)
        for b in range(0x80):
            if b != 0x1A:
                assert dec[b] == chr(b), (enc, b)
        high = [ord(d) for d in dec[0x80:]]
        assert all(c < 0x10000 for c in high)
        assert dec[0x1A] == ("\ufffd" if enc.startswith("sloppy") else "\x1a"), enc
        pairs = sorted({ord(dec[b]): b for b in list(range(0x80, 0x100)) + [0x1A]}.items())
        assert len(pairs) == 129, enc  # no duplicates
        for cp, _b in pairs:
            # nothing non-ASCII-identity decodes to an ASCII character other than 0x1A
            assert cp >= 0x80 or cp == 0x1A, (enc, cp)
        pair_map = dict(pairs)
        # cross-check against ftfy's own possible_encoding regex and the codec's encoder
        for c in range(0x10000):
            if 0xD800 <= c <= 0xDFFF:
                continue
            ch = chr(c)
            ours = (c < 0x80 and c != 0x1A) or c in pair_map
            assert ours == chardata.possible_encoding(ch, enc), (enc, c)
            if ours:
                assert ch.encode(enc) == bytes([pair_map.get(c, c)]), (enc, c)
        ident = enc.upper().replace("-", "_")
        enc_items = [f"(0x{cp:X}, 0x{b:02X})" for cp, b in pairs]
        emit(f"static ENCODE_{ident}: [(u16, u8); 129] = [\n{wrap(enc_items)}\n];\n")
        charmap_items.append(
            "    Charmap {\n"
            f"        name: {rust_str(enc)},\n"
            f"        sloppy: {'true' if enc.startswith('sloppy') else 'false'},\n"
            f"        high: [\n{wrap([f'0x{c:04X}' for c in high], indent='            ')}\n        ],\n"
            f"        encode: &ENCODE_{ident},\n"
            "    },\n"
        )
    emit(
        "\n/// `ftfy.chardata.CHARMAP_ENCODINGS`, in the order ftfy tries them.\n"
        f"pub(crate) static CHARMAPS: [Charmap; {len(charmap_items)}] = [\n"
        + "".join(charmap_items)
        + "];\n\n"
    )
    undefined_1252 = []
    for b in range(256):
        try:
            bytes([b]).decode("windows-1252")
        except UnicodeDecodeError:
            undefined_1252.append(b)
    emit(
        "/// Bytes that strict (non-sloppy) `windows-1252` cannot decode.\n"
        f"pub(crate) static WINDOWS_1252_UNDEFINED: [u8; {len(undefined_1252)}] = ["
        + ", ".join(f"0x{b:02X}" for b in undefined_1252)
        + "];\n\n"
    )

    # ---- HTML entities
    emit("// ---- HTML ----------------------------------------------------------------------\n\n")
    html5 = html.entities.html5
    names = sorted(html5, key=lambda n: n.encode())
    items = [f"({rust_str(n)}, {rust_str(html5[n])})" for n in names]
    emit(
        "/// `html.entities.html5`: entity name (without `&`, with `;` where the name has one)\n"
        "/// to replacement text, sorted by name.\n"
        f"pub(crate) static HTML5_ENTITIES: &[(&str, &str)] = &[\n{wrap(items)}\n];\n"
    )
    nosemi_max = max(len(n) for n in html5 if not n.endswith(";"))
    emit(
        "/// The longest `html.entities.html5` name without a trailing `;`.\n"
        f"pub(crate) const HTML5_MAX_NAME_WITHOUT_SEMICOLON: usize = {nosemi_max};\n"
    )
    # ftfy's HTML_ENTITIES = the html5 names that end in ';' (with '&' prepended),
    # plus upper-cased variants of some of them.
    base = {"&" + n: v for n, v in html5.items() if n.endswith(";")}
    extra = {}
    for k, v in chardata.HTML_ENTITIES.items():
        if k in base:
            assert base[k] == v, k
        else:
            extra[k] = v
    assert set(base) <= set(chardata.HTML_ENTITIES)
    for k in extra:
        assert k.startswith("&") and k.endswith(";") and k.isascii()
    items = [f"({rust_str(k[1:])}, {rust_str(v)})" for k, v in sorted(extra.items(), key=lambda kv: kv[0].encode())]
    emit(
        "/// The entries of `ftfy.chardata.HTML_ENTITIES` that are not `&` + an html5 name ending\n"
        "/// in `;`: the upper-cased entities ftfy also decodes (key without `&`), sorted.\n"
        f"pub(crate) static FTFY_UPPERCASE_ENTITIES: &[(&str, &str)] = &[\n{wrap(items)}\n];\n"
    )
    items = [f"(0x{k:X}, {rust_str(v)})" for k, v in sorted(html._invalid_charrefs.items())]
    emit(
        "/// `html._invalid_charrefs`: numeric references replaced per the HTML5 spec.\n"
        f"pub(crate) static INVALID_CHARREFS: &[(u32, &str)] = &[\n{wrap(items)}\n];\n"
    )
    emit(
        ranges_static(
            "INVALID_CODEPOINTS",
            "`html._invalid_codepoints`: numeric references that decode to nothing.",
            html._invalid_codepoints,
        )
    )

    text = with_header(header, "".join(parts))
    with open(out_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {out_path} ({len(text.encode())} bytes)")


if __name__ == "__main__":
    main()
