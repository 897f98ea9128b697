#!/usr/bin/env python3
"""Generate `crates/clip-preprocess/tests/data/ftfy_cases.json`, the reference corpus for the
Rust port of `ftfy.fix_text` and `html.unescape` (crates/clip-preprocess/src/text/ftfy.rs).

For every input string `s` the corpus records

- `fix_text`: `ftfy.fix_text(s)` (ftfy 6.3.1, default configuration),
- `unescape`: `html.unescape(s)`,
- `clean`:    `html.unescape(html.unescape(ftfy.fix_text(s)))`, i.e. open_clip's
  `basic_clean` before its final `.strip()`.

The inputs mix hand-written text in many scripts, HTML entities, control characters and
terminal escapes, many kinds of synthesized mojibake, and seeded random strings. Everything is
deterministic: rerunning the script reproduces the file byte for byte.

Usage (from the repository root):

    . ../venv/bin/activate   # a venv outside the repository: ftfy==6.3.1 on CPython 3.11
    python tools/ftfy/gen_cases.py [output.json]
"""

from __future__ import annotations

import html
import json
import os
import random
import sys
import unicodedata

import ftfy
import ftfy.bad_codecs  # noqa: F401
from ftfy import badness, chardata

# ftfy==6.3.1
assert ftfy.__version__ == "6.3.1", ftfy.__version__
assert sys.version_info[:2] == (3, 11), sys.version
assert unicodedata.unidata_version == "14.0.0"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "crates/clip-preprocess/tests/data/ftfy_cases.json")

rng = random.Random(20240611)

# ---------------------------------------------------------------------------
# Clean text
# ---------------------------------------------------------------------------

CAPTIONS = [
    "A photo of a cat sitting on a windowsill.",
    "a dog running on the beach at sunset",
    "Two people riding bicycles down a city street.",
    "Close-up of a red rose with water droplets",
    "An aerial view of a snowy mountain range",
    "A bowl of ramen with an egg, scallions and pork.",
    "the Eiffel Tower at night, lit up",
    "A child's drawing of a house (crayon on paper)",
    "Man in a blue suit giving a presentation - 2019",
    "Vintage car parked outside a diner; 1950s style",
    "Label: 'Best Before 12/03/2024' on a milk carton",
    "Price tag: $19.99 -- 50% off!!!",
    "Email me at someone@example.com or call +1 (555) 010-9999",
    "C:\\Users\\photo\\IMG_0001.JPG",
    "https://example.com/path?query=1&other=2#frag",
    "#sunset #beach #travel @friend",
    "   leading and trailing spaces   ",
    "tabs\tand\tnewlines\nin one caption\n",
    "",
    " ",
    "\n",
    "x",
    "3 < 5 and 7 > 2",
    "Tom & Jerry",
    "AT&T; R&D; Q&A",
    "the end.",
    "1,234,567.89 + 2e10 = ?",
    "<b>bold</b> and <i>italic</i>",
    "<img src=\"a.png\" alt=\"A &amp; B\">",
]

SENTENCES = [
    "Voilà, c'est déjà l'été à Montréal.",
    "Où est la bibliothèque? À côté de l'église.",
    "Ça coûte 5 € — très cher !",
    "Schöne Grüße aus München, Österreich und Zürich.",
    "Die Straße ist sehr schön, aber teuer: 12,50 €.",
    "El niño comió piñata en España, ¿verdad? ¡Sí!",
    "São Paulo é a maior cidade do Brasil; ação e coração.",
    "àquele dia, às vezes, à noite",
    "Zażółć gęślą jaźń — Łódź, Kraków, Gdańsk.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Árvíztűrő tükörfúrógép, Győr, Pécs.",
    "İstanbul'da ağır şoför çığlık attı; Göğüş.",
    "Tiếng Việt có nhiều dấu: Hà Nội, Đà Nẵng, Huế.",
    "Ελληνικά: Καλημέρα κόσμε, ευχαριστώ πολύ.",
    "Русский текст: Съешь же ещё этих мягких французских булок.",
    "Українська: Їжак, ґанок, єнот, подвір'я.",
    "Български: Щастие, юнак, ябълка.",
    "Lietuvių kalba: ąčęėįšųūž, Vilnius.",
    "Latviešu: ķēniņš, ģimene, Rīga.",
    "Eesti keel: jäätis, õun, Tallinn.",
    "Íslenska: Þórður, Ægir, ðetta.",
    "Dansk og norsk: blåbærsyltetøy, Ærø.",
    "Svenska: Åsa åt räksmörgås i Malmö.",
    "Română: Știință, țară, București.",
    "Hrvatski: Čačak, Đakovo, Šibenik, Žminj.",
    "Català: L'àvia va anar a la plaça; fàcil, cançó.",
    "Malti: Ħamrun, ċirasa, għasfur.",
    "Esperanto: ĉiuĵaŭde ŝi manĝas ĝin.",
    "日本語のテキスト：東京タワーと富士山。",
    "中文句子：我喜欢吃北京烤鸭。",
    "繁體中文：臺灣的夜市很熱鬧。",
    "한국어 문장: 서울의 밤하늘이 아름답다.",
    "العربية: مرحبا بالعالم، كيف حالك؟",
    "فارسی: سلام دنیا، حال شما چطور است؟",
    "עברית: שלום עולם, מה שלומך?",
    "हिन्दी: नमस्ते दुनिया, आप कैसे हैं?",
    "বাংলা: আমি বাংলায় গান গাই।",
    "தமிழ்: வணக்கம் உலகம்.",
    "ไทย: สวัสดีชาวโลก ขอบคุณครับ",
    "ქართული: გამარჯობა მსოფლიო",
    "Հայերեն: Բարեւ աշխարհ",
    "አማርኛ: ሰላም ለዓለም",
    "Emoji: 😀😂🥲 ❤️ 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇫🇷 🏴󠁧󠁢󠁷󠁬󠁳󠁿 1️⃣",
    "Skin tones: 👋🏻 👋🏼 👋🏽 👋🏾 👋🏿 and 🧑🏾‍💻",
    "Math: ∑ x² ≤ ∞, √2 ≈ 1.414, ∂f/∂x, α→β",
    "Symbols: © ® ™ § ¶ † ‡ • … ‰ ′ ″ ° ± × ÷",
    "Currency: $ € £ ¥ ₹ ₩ ₽ ₿ ¢",
    "Kaomoji: (╯°□°)╯︵ ┻━┻ ¯\\_(ツ)_/¯ ( ͡° ͜ʖ ͡°)",
    "Box drawing: ┌─┬─┐ │ │ │ ├─┼─┤ └─┴─┘ ╔═╗",
    "Arrows and shapes: ← ↑ → ↓ ■ □ ▲ △ ● ○ ★ ☆",
    "Music: ♩ ♪ ♫ ♬ 𝄞",
    "Math letters: 𝐀𝐁𝐂 𝒜ℬ𝒞 𝔄𝔅ℭ 𝟘𝟙𝟚",
    "Combining: e\u0301 a\u0300 n\u0303 o\u0308 A\u030a c\u0327",
    "Stacked marks: a\u0323\u0302 q\u0307\u0323 x\u0300\u0301\u0302",
    "Hangul jamo: \u1100\u1161\u11a8 \u1112\u1161\u11ab",
    "Zero width: a\u200bb\u200cc\u200dd\u2060e",
    "Bidi: abc \u202eRTL override\u202c \u200fmark\u200e",
    "No-break\u00a0space and thin\u2009space and\u3000ideographic",
    "Soft\u00adhyphen and en\u2013dash and em\u2014dash",
    "Ligatures: ﬁnancial ﬂoor ﬀ ﬃ ﬄ ﬅ ﬆ Ĳssel ĳs ŉ Ǆ ǅ ǆ Ǉ ǈ ǉ Ǌ ǋ ǌ Ǳ ǲ ǳ",
    "Full width: ＡＢＣ ａｂｃ １２３ ！？＃＄％＆（）",
    "Half width: ｶﾀｶﾅ ﾃｽﾄ ｱｲｳｴｵ ﾊﾟﾋﾟﾌﾟ ﾞﾟ ￦ ￥ ￡ ￢ ￣ ￤",
    "Curly: “double” ‘single’ ‚low‘ „low“ ‛reversed‟ ʼapostrophe′",
    "Guillemets: «bonjour» ‹salut› »Hallo«",
    "Dashes: - ‐ ‑ ‒ – — ― ⸺",
    "Ellipsis… and interrobang‽",
    "Roman numerals: Ⅰ Ⅱ Ⅻ ⅰ ⅱ",
    "Superscripts: x² y³ z¹ H₂O ⁴⁵",
    "Fractions: ½ ¼ ¾ ⅓ ⅔ ⅛",
    "Private use: \ue000\uf8ff \U000f0000",
    "Noncharacters: \ufdd0 \ufffe \U0001fffe",
    "Specials: \ufff9\ufffa\ufffb\ufffc\ufffd",
    "BOM\ufeffinside and \u2060 word joiner",
    "Deprecated format: \u206a\u206b\u206c\u206d\u206e\u206f",
    "Musical controls: \U0001d173\U0001d174\U0001d17a",
    "Tag chars: \U000e0001\U000e0041\U000e007f",
    "Variation selectors: ✈\ufe0f ✈\ufe0e 葛\U000e0100",
    "Korean NFC: 한글 vs \u1112\u1161\u11ab\u1100\u1173\u11af",
    "Greek tonos: ά έ ή ί ό ύ ώ ΐ ΰ",
    "Mixed: Ünïcödé tëxt wïth dïäcrïtïcs",
    "Ã is a real letter; so is Â in Romanian (Â).",
    "He said “I’ll be there” — and he was.",
    "Café, naïve, résumé, coöperate, façade, jalapeño",
    "Twenty° degrees and 5µm and 10‰",
    "The ‘quick’ brown fox’s tail",
    "Ωmega ΣIGMA ƒunction",
]

HTML_SNIPPETS = [
    "&amp; &lt; &gt; &quot; &apos; &nbsp;",
    "&amp &lt &gt &quot &nbsp &copy &reg",
    "&AMP; &LT; &GT; &QUOT; &COPY; &REG;",
    "&AMP &LT &GT &QUOT &COPY &REG",
    "P&EACUTE;REZ and BUNDESSTRA&SZLIG;E and &NTILDE; &nTILDE;",
    "&eacute;&egrave;&ecirc;&euml; &Eacute;&EGRAVE;",
    "&hellip; &mdash; &ndash; &lsquo;&rsquo; &ldquo;&rdquo;",
    "&#65;&#66;&#67; &#x41;&#x42;&#x43; &#X44;",
    "&#65&#66&#67 &#x41&#x42 no semicolons",
    "&#0; &#00; &#1; &#8; &#9; &#10; &#11; &#12; &#13; &#14; &#31; &#32;",
    "&#127; &#128; &#129; &#130; &#141; &#143; &#144; &#150; &#157; &#159; &#160;",
    "&#x80; &#x81; &#x8d; &#x9F; &#xA0; &#xFF;",
    "&#xD800; &#xDFFF; &#55296; &#xFFFE; &#xFFFF; &#x1FFFE; &#xFDD0; &#xFDEF;",
    "&#x10FFFF; &#x110000; &#1114111; &#1114112; &#99999999999999999999;",
    "&#x0000000000000000000000041; &#0000000000000000000065;",
    "&#x1F600; &#128512; &#x1f469;&#x200d;&#x1f4bb;",
    "&#59; &#x3b; &#38; &#x26;amp;",
    "&#; &#x; &#xg; &#a; &# ; & ; &;",
    "&notit; &notin; &not it; &noti; &notin",
    "&amp;amp; &amp;lt; &amp;#39; &amp;amp;amp;",
    "&ampfoo &ltbar &gtx &copy2023 &reg;istered",
    "&frac12; &frac14 &frac34x &sup2; &sup3 &micro; &middot",
    "&Jscr;ohn &HilbertSpace;ancock &checkmark; &bigstar;",
    "&NotNestedGreaterGreater; &CounterClockwiseContourIntegral;",
    "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; &abcdefghijklmnopqrstuvwxy;",
    "&unknown; &foo;bar &x; &lt;&gt;",
    "&lt;b&gt;bold&lt;/b&gt;",
    "fish &amp; chips &amp;amp; more",
    "&amp;&amp;&amp;&amp;",
    "&;&&&#&#x&#;",
    "&\tamp; &\namp; &\x0camp; &\ramp;",
    "&ampé &lté &é; &#é;",
    "&amp;#x2019; &amp;#8217; &#x26;#x2019;",
    "it&#x2019;s &#8220;quoted&#8221; &#8216;single&#8217;",
    "&#xd83d;&#xde00; surrogate pair refs",
    "&#1234567890123456789012345678901234567890;",
    "&#x" + "0" * 40 + "41;",
    "&#" + "0" * 30 + "65;",
    "&NoBreak; &ZeroWidthSpace; &InvisibleTimes; &af;",
    "&fjlig; &ThickSpace; &nvlt; &bne; &acE;",
    "&Aacute&aacute;&AACUTE; &Auml; &AUML; &auml",
    "&SZLIG; &szlig; &SZlig;",
    "&DOT; &dot; &Dot;",
    "&LARR; &larr; &Larr; &lArr;",
    "&THETA; &theta; &Theta; &thetav;",
    "&TIMES; &times; &DIVIDE; &divide;",
    "&ETH; &eth; &ETh;",
    "&IEXCL; &IQUEST; &CENT; &POUND; &YEN; &SECT;",
]

CONTROL_SNIPPETS = [
    "\x1b[36;44mI'm blue, da ba dee da ba doo...\x1b[0m",
    "\x1b[1mbold\x1b[22m \x1b[31mred\x1b[39m \x1b[38;5;208morange\x1b[0m",
    "\x1b[2J\x1b[H clear screen \x1b[K",
    "\x1b[٣m arabic digit escape \x1b[१२m devanagari",
    "\x1b[ not an escape \x1b] \x1b[12 \x1b[;;;Z",
    "\x1b\x1b[0m double escape",
    "bell\x07 backspace\x08 vt\x0b ff\x0c cr\r so\x0e us\x1f del\x7f",
    "null\x00byte and \x01\x02\x03 start",
    "file sep \x1c group \x1d record \x1e unit \x1f",
    "C1: \x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f",
    "C1: \x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f",
    "What is this \x85 I don't even",
    "it\x92s a \x93quote\x94 \x96 dash",
    "line one\r\nline two\rline three\u2028line four\u2029line five\x85end",
    "\r\n\r\n\r\r\n\n",
    "sub\x1achar and \x1a\x1a",
    "\ufeffBOM at start",
    "trailing BOM\ufeff",
    "&am\x00p; &l\x7ft; split by controls",
    "\x1b[0m&amp;\x1b[0m",
    "&\x1b[0mamp;",
    "a\u0300\x00\u0301 control between marks",
    "ﬁ\x00ﬂ",
]

# Mojibake seeds: the clean strings that get mis-decoded.
MOJIBAKE_SEEDS = [
    "café",
    "naïve résumé",
    "São Paulo",
    "à la mode",
    "à quel point",
    "às vezes",
    "àquele",
    "fàcil",
    "Ã real",
    "schön",
    "Müller & Söhne",
    "Straße",
    "niño",
    "¿Qué?",
    "¡Olé!",
    "“quoted”",
    "it’s",
    "don’t",
    "‘single’",
    "em—dash",
    "en–dash",
    "ellipsis…",
    "bullet • point",
    "€100",
    "£50",
    "¥1000",
    "©2020",
    "™",
    "°C",
    "½ cup",
    "×2",
    "✔ done",
    "❤",
    "♥ love",
    "★★★",
    "😀",
    "👍🏽",
    "🇫🇷",
    "👨‍👩‍👧",
    "日本語",
    "東京",
    "中文",
    "한국어",
    "Привет",
    "Москва",
    "Ελληνικά",
    "العربية",
    "مرحبا",
    "עברית",
    "हिन्दी",
    "ไทย",
    "Łódź",
    "Kraków",
    "Çağlar",
    "İstanbul",
    "Győr",
    "Đà Nẵng",
    "Ñandú",
    "Øresund",
    "Ærø",
    "Þórður",
    "ẞ",
    "ﬁ",
    "ｶﾀｶﾅ",
    "ＡＢＣ",
    "\u00a0nbsp\u00a0",
    "a\u00a0b",
    "Ωmega",
    "Ā ā",
    "ō",
    "ū",
    "ŝ",
    "ė",
    "ľ",
    "ť",
    "ő",
    "ű",
    "ʼ",
    "ˆ",
    "†‡",
    "‰",
    "‹›",
    "№",
    "Ђ",
    "ђ",
    "ґ",
    "Ё",
    "ё",
    "∑",
    "√",
    "∞",
    "≈",
    "≠",
    "≤≥",
    "◊",
    "",
    "ﬂ",
    "\u2028",
    "\u0085",
    "\u00ad",
    "·",
    "´",
    "¨",
    "¸",
    "ª",
    "º",
    "¬",
    "¦",
    "¤",
    "¯",
    "°",
    "±",
    "²³",
    "µ",
    "¶",
    "§",
    "¼¾",
    "«»",
]

MOJIBAKE_CONTEXTS = [
    "{}",
    "The word is {} here.",
    "{} {}",
    "{}, {} and {}",
    "[{}]",
    "'{}'",
    "{}!",
    "text {}",
    "{} text",
    "Réal text with {} inside",
    "{}\n{}",
]

SINGLE_BYTE = [
    "sloppy-windows-1252",
    "latin-1",
    "sloppy-windows-1251",
    "sloppy-windows-1250",
    "sloppy-windows-1253",
    "sloppy-windows-1254",
    "sloppy-windows-1257",
    "iso-8859-2",
    "macroman",
    "cp437",
    "sloppy-windows-1255",
    "sloppy-windows-1256",
    "cp850",
    "cp1252",
    "windows-1251",
]


def mis_decode(s: str, enc: str, errors: str = "replace") -> str:
    return s.encode("utf-8").decode(enc, errors=errors)


def mojibake_cases() -> list[str]:
    out: list[str] = []
    for seed in MOJIBAKE_SEEDS:
        for enc in rng.sample(SINGLE_BYTE, 6):
            out.append(mis_decode(seed, enc))
        ctx = rng.choice(MOJIBAKE_CONTEXTS)
        enc = rng.choice(SINGLE_BYTE[:10])
        bad = mis_decode(seed, enc)
        out.append(ctx.format(*([bad] * ctx.count("{}"))))
        # mixed: one mojibake part next to clean text in another part
        out.append(f"{seed} / {bad}")
    for sent in SENTENCES + CAPTIONS:
        for enc in rng.sample(SINGLE_BYTE[:10], 3):
            out.append(mis_decode(sent, enc))
    # double and triple encoding
    for seed in rng.sample(MOJIBAKE_SEEDS, 40) + rng.sample(SENTENCES, 20):
        enc1, enc2 = rng.choice(SINGLE_BYTE[:3]), rng.choice(SINGLE_BYTE[:3])
        once = mis_decode(seed, enc1)
        out.append(mis_decode(once, enc2))
        out.append(mis_decode(mis_decode(once, enc2), "sloppy-windows-1252"))
    # U+A0 bytes that turned into spaces
    for seed in MOJIBAKE_SEEDS + SENTENCES:
        bad = mis_decode(seed, "sloppy-windows-1252")
        if "\xa0" in bad:
            out.append(bad.replace("\xa0", " "))
        bad = mis_decode(seed, "latin-1")
        if "\xa0" in bad:
            out.append(bad.replace("\xa0", " "))
    # replacement characters from strict windows-1252 and from lost bytes
    for seed in MOJIBAKE_SEEDS + rng.sample(SENTENCES, 30):
        bad = mis_decode(seed, "windows-1252", errors="replace")
        if "\ufffd" in bad:
            out.append(bad)
        bad = mis_decode(seed, "sloppy-windows-1252")
        if len(bad) > 2:
            i = rng.randrange(len(bad))
            out.append(bad[:i] + rng.choice(["\ufffd", "?"]) + bad[i + 1 :])
    # classic in-the-wild shapes
    out += [
        "âœ” No problems",
        "&macr;\\_(ã\x83\x84)_/&macr;",
        "(à¸‡'âŒ£')à¸‡",
        "sÃ³",
        "voilÃ le travail",
        "schÃ¶n",
        "Ã la mode",
        "Ã quel point",
        "Ã s vezes",
        "Ã quele",
        "fÃ cil",
        "Ã¢â‚¬Å“mismatchedÃ¢â‚¬Â",
        "â€œ like this â€�",
        "â€œ like this â€?",
        "Itâ€™s",
        "Itâ€?s",
        "HÃ¤agen-Dazs",
        "cafÃ© cafÃ©",
        "Ã‰tÃ©",
        "He's Justinâ\x9d¤",
        "Ã¨Â¿â„¢Ã¦ËœÂ¯",
        "ÐŸÑ€Ð¸Ð²ÐµÑ‚",
        "Ð¿Ñ€Ð¸Ð²ÐµÑ‚ Ð¼Ð¸Ñ€",
        "РџСЂРёРІРµС‚",
        "вЂњquoteвЂќ",
        "ГўВЂВњtestГўВЂВќ x",
        "Î•Î»Î»Î·Î½Î¹ÎºÎ¬",
        "Ø§Ù„Ø¹Ø±Ø¨ÙŠØ©",
        "Ã—Â©Ã—ÂœÃ—Â•Ã—Â",
        "à¤¨à¤®à¤¸à¥à¤¤à¥‡",
        "æ—¥æœ¬èªž",
        "í•œêµ\xadì–´",
        "ðŸ˜€",
        "ðŸ‘\x8d",
        "ð\x9f\x98\x80",
        "ð\u009f\u0098\u0080 ok",
        "Ã\u00a0",
        "Ã ",
        "Â\u00a0",
        "Â ",
        "a Â b",
        "x. Â¿",
        "Hi.Â That",
        "Ã¡ Ã\xa0 Ã¢",
        "Ã¡Ã\xa0Ã¢Ã£Ã¤Ã¥",
        "â€™ â€œ â€\x9d â€“ â€” â€¦ â€¢",
        "â€\u2122",
        "Ã¢â‚¬â„¢",
        "ÃƒÂ©",
        "ÃƒÆ’Ã‚Â©",
        "Ã©Ã¨Ãª",
        "√©t√©",
        "‚Äú ‚Äù ‚Äô",
        "caf√©",
        "Ã\x83Â©",
        "\xed\xa0\xbd\xed\xb8\x8d",
        "Ã­Â Â½Ã­Â¸Â\x8d",
        "í ½í¸\x8d",
        "Ã\x80\x80",
        "null \xc0\x80 in Java",
        "Ã€Â€",
        "Ã\x81",
        "ÃƒÂ",
        "â€",
        "â€ ",
        "Ã",
        "Â",
        "Ã‚",
        "Ã Ã Ã",
        "ÂÂÂ",
        "Ã¼ber Ã¼ber",
        "Ã¼ber\nÃ¼ber\nnormal Ã¼",
        "clean line\nÃ©tÃ©\n<p>Ã©tÃ© &amp;</p>\n&amp; Ã©",
        "â”Œâ”€â”",
        "Ã¢â‚¬Å¡",
        "Ã¤Â¸Â\xadÃ¦â€“â€¡",
        "Ð\x9fÑ\x80Ð¸Ð²ÐµÑ\x82",
        "Ã\x90Å¸Ã‘â‚¬",
        "Â¯\\_(ãƒ„)_/Â¯",
        "ãƒ„",
        "ã\x83\x84",
        "Ã®Ã¯Ã°",
        "Ã±Ã²Ã³",
        "ÎšÎ±Î»Î·Î¼Î­Ï\x81Î±",
        "Î²â‚¬â„¢",
        "Ä\x81â‚¬",
        "ā€™",
        "β€™",
        "Ã¡ la",
        "Ã³ la",
        "a Ã  b",
        "aÃ b",
        "Ã",
        "Ãa",
        "pÃ¡gina",
        "MÃ¼nchen MÃƒÂ¼nchen",
        "Ã\u2014",
        "Ã—",
        "Ã·",
        "Ã°Å¸â€˜Â\x8d",
        "ðŸ‡«ðŸ‡·",
        "ï»¿BOM",
        "ï¿½",
        "ï¬\x81",
        "Ã¯Â¬Â\x81",
        "âˆ\x9a",
        "Â°C",
        "10Â°",
        "Â£5",
        "5Â€",
        "Ã\x97Â\x90",
        "×\x90",
        "ì\x95\x88ë\x85\x95",
    ]
    # random mojibake of random non-ASCII text, with random corruption
    pools = [
        "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿ",
        "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝ",
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "αβγδεζηθικλμνξοπρστυφχψω",
        "ąćęłńóśźżčďěňřšťůž",
        "“”‘’–—…•€™",
        "日本語中文한국어ภาษาไทย",
        "😀😃😄😁😆😅😂🤣👍👎❤✨🔥",
    ]
    for _ in range(220):
        pool = rng.choice(pools)
        words = []
        for _ in range(rng.randint(1, 4)):
            w = "".join(rng.choice(pool + "abcdefghij") for _ in range(rng.randint(1, 6)))
            words.append(w)
        clean = " ".join(words)
        enc = rng.choice(SINGLE_BYTE)
        bad = mis_decode(clean, enc)
        kind = rng.randrange(6)
        if kind == 1:
            bad = bad.replace("\xa0", " ")
        elif kind == 2 and bad:
            i = rng.randrange(len(bad))
            bad = bad[:i] + "\ufffd" + bad[i + 1 :]
        elif kind == 3:
            bad = clean + " " + bad
        elif kind == 4:
            bad = bad + "\n" + clean + "\n" + bad
        elif kind == 5:
            bad = html.escape(bad)
        out.append(bad)
    return out


# ---------------------------------------------------------------------------
# Random strings
# ---------------------------------------------------------------------------

BADNESS_CHARS = "".join(
    sorted(
        {
            chr(c)
            for c in range(0x3000)
            if any(
                ch and chr(c) in ch
                for ch in [
                    badness.MOJIBAKE_CATEGORIES[k]
                    for k in badness.MOJIBAKE_CATEGORIES
                    if "-" not in badness.MOJIBAKE_CATEGORIES[k]
                ]
            )
        }
    )
)


def _charset_of_encodings() -> str:
    chars = set()
    for enc in chardata.CHARMAP_ENCODINGS:
        chars.update(bytes(range(0x80, 0x100)).decode(enc))
    return "".join(sorted(chars))


ENCODING_CHARS = _charset_of_encodings()
CLUE_CHARS = "".join(
    sorted(
        {
            chr(c)
            for c in range(0x20, 0x2200)
            if any(
                __import__("re").fullmatch(f"[{v}]", chr(c))
                for v in chardata.UTF8_CLUES.values()
            )
        }
    )
)
ASCII_PRINT = "".join(chr(c) for c in range(0x20, 0x7F))


def random_codepoint() -> str:
    while True:
        r = rng.random()
        if r < 0.3:
            c = rng.randrange(0x20, 0x80)
        elif r < 0.5:
            c = rng.randrange(0x80, 0x800)
        elif r < 0.75:
            c = rng.randrange(0x800, 0x10000)
        elif r < 0.9:
            c = rng.randrange(0x10000, 0x30000)
        else:
            c = rng.randrange(0, 0x110000)
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)


def random_cases() -> list[str]:
    out = []
    # random code points over the whole range
    for _ in range(250):
        out.append("".join(random_codepoint() for _ in range(rng.randint(1, 30))))
    # random code points near normalization-sensitive areas
    marks = [chr(c) for c in range(0x300, 0x370)] + [
        chr(c) for c in (0x1AB0, 0x1DC0, 0x20D0, 0x302A, 0x3099, 0x309A, 0xFE20, 0x05B0, 0x0E38, 0x0F71)
    ]
    # code points that are unassigned in Unicode 14 but may be assigned later
    unassigned14 = [
        chr(c)
        for c in list(range(0x0897, 0x0898))
        + list(range(0x1ACF, 0x1AFF))
        + list(range(0x10EFC, 0x10F00))
        + list(range(0x11F00, 0x11F5A))
        + list(range(0x1E4D0, 0x1E4FA))
        + list(range(0x2FFC, 0x3000))
        + list(range(0x16D40, 0x16D7A))
        + list(range(0x1E5D0, 0x1E5FB))
        + list(range(0x113B8, 0x113C1))
        + list(range(0x11380, 0x113E3))
        + list(range(0x1611E, 0x1613A))
        if unicodedata.category(chr(c)) == "Cn"
    ]
    bases = list("aeiouAEIOUnNcCsSzZ") + ["ά", "ᄀ", "가", "각", "ᅡ", "ᆨ", "ა"]
    for _ in range(200):
        s = []
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            if r < 0.35:
                s.append(rng.choice(bases))
            elif r < 0.7:
                s.append(rng.choice(marks))
            elif r < 0.85:
                s.append(rng.choice(unassigned14))
            else:
                s.append(random_codepoint())
        out.append("".join(s))
    # random sequences of characters from ftfy's own tables
    for pool_name, pool in (
        ("badness", BADNESS_CHARS),
        ("encodings", ENCODING_CHARS),
        ("clues", CLUE_CHARS),
    ):
        for _ in range(130):
            n = rng.randint(1, 16)
            s = "".join(
                rng.choice(pool) if rng.random() < 0.75 else rng.choice(ASCII_PRINT + " \n")
                for _ in range(n)
            )
            out.append(s)
    # random bytes decoded in each single-byte encoding
    for _ in range(120):
        n = rng.randint(1, 20)
        bs = bytes(rng.randrange(0x80, 0x100) if rng.random() < 0.7 else rng.randrange(0x20, 0x80) for _ in range(n))
        out.append(bs.decode(rng.choice(SINGLE_BYTE[:10])))
    # valid UTF-8 of random chars, mis-decoded
    for _ in range(150):
        clean = "".join(random_codepoint() for _ in range(rng.randint(1, 6)))
        enc = rng.choice(SINGLE_BYTE[:10])
        bad = clean.encode("utf-8").decode(enc, errors="replace")
        if rng.random() < 0.3:
            bad = bad.replace("\xa0", " ")
        out.append(bad)
    # random entity soup
    names = list(html.entities.html5)
    for _ in range(120):
        parts = []
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            if r < 0.3:
                parts.append("&" + rng.choice(names))
            elif r < 0.45:
                parts.append("&" + rng.choice(names).rstrip(";").upper() + rng.choice([";", ""]))
            elif r < 0.6:
                parts.append(f"&#{rng.choice([rng.randrange(0, 300), rng.randrange(0, 0x110100), rng.randrange(0xD800, 0xE000)])}{rng.choice([';', '', 'x'])}")
            elif r < 0.75:
                parts.append(f"&#{rng.choice('xX')}{rng.randrange(0, 0x120000):x}{rng.choice([';', '', 'g'])}")
            elif r < 0.85:
                parts.append(rng.choice(["&", "&#", "&;", "<", ">", " ", "amp;", "\n"]))
            else:
                parts.append(rng.choice(ASCII_PRINT) * rng.randint(1, 3))
        out.append("".join(parts))
    # random control / escape soup
    ctl = [chr(c) for c in range(0x20)] + ["\x7f", "\x1b[", "\x1b[0m", "\x1b[1;31m", "\u2028", "\u2029", "\x85", "\ufeff", "\u206a", "\ufffc"]
    for _ in range(80):
        out.append("".join(rng.choice(ctl) if rng.random() < 0.4 else rng.choice(ASCII_PRINT) for _ in range(rng.randint(1, 20))))
    return out


def multiline_cases() -> list[str]:
    out = []
    pieces = (
        CAPTIONS
        + SENTENCES
        + HTML_SNIPPETS
        + ["Ã©tÃ©", "â€œhiâ€\x9d", "&amp;lt;", "<p>", "a < b", "ＦＵＬＬ", "ﬁx", "\x1b[0m", "\r", "x\r\ny"]
    )
    for _ in range(120):
        lines = [rng.choice(pieces) for _ in range(rng.randint(2, 5))]
        sep = rng.choice(["\n", "\r\n", "\n\n", "\u2028", "\r"])
        out.append(sep.join(lines))
    return out


def main() -> None:
    out_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    inputs: list[str] = []
    inputs += CAPTIONS + SENTENCES + HTML_SNIPPETS + CONTROL_SNIPPETS
    # each clean sentence with some decorations
    for s in SENTENCES:
        inputs.append(html.escape(s))
        inputs.append(s.upper())
        inputs.append(unicodedata.normalize("NFD", s))
        inputs.append(unicodedata.normalize("NFKD", s))
    inputs += mojibake_cases()
    inputs += multiline_cases()
    inputs += random_cases()

    seen = set()
    cases = []
    for s in inputs:
        if s in seen:
            continue
        seen.add(s)
        fixed = ftfy.fix_text(s)
        cases.append(
            {
                "input": s,
                "fix_text": fixed,
                "unescape": html.unescape(s),
                "clean": html.unescape(html.unescape(fixed)),
            }
        )
    doc = {
        "generator": "tools/ftfy/gen_cases.py",
        "ftfy_version": ftfy.__version__,
        "python_version": sys.version.split()[0],
        "unicode_version": unicodedata.unidata_version,
        "cases": cases,
    }
    text = json.dumps(doc, ensure_ascii=False, indent=0)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.write("\n")
    changed = sum(1 for c in cases if c["fix_text"] != c["input"])
    print(f"wrote {out_path}: {len(cases)} cases ({changed} changed by fix_text), {len(text.encode())} bytes")


if __name__ == "__main__":
    main()
