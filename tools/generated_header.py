"""The header of a generated Rust file, with a hash of the file's body.

`crates/clip-preprocess/src/text/generated/mod.rs` recomputes the hash in a unit test, so that
`cargo test` fails on a hand edit (and needs no Python): a generated file is changed by
changing its generator and running it again.

The line `// body-blake3: <hex>` ends the header; the body is every byte after that line, and
the hash is BLAKE3 of its UTF-8 bytes, in lowercase hex.
"""

import blake3  # pip install blake3==1.0.11

HASH_PREFIX = "// body-blake3: "


def with_header(header: str, body: str) -> str:
    """`header` (comment lines, each ending in a newline), the hash line, then `body`."""
    assert header.endswith("\n") and all(
        line.startswith("//") for line in header.splitlines()
    ), header
    digest = blake3.blake3(body.encode("utf-8")).hexdigest()
    return f"{header}{HASH_PREFIX}{digest}\n{body}"
