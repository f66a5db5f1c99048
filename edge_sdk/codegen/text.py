"""Text that goes into generated C from outside (tensor names, layer notes): made safe."""

from __future__ import annotations


def c_comment(text: str) -> str:
    """``text`` (a tensor's name, from the model file: anything) safe inside a C block comment
    under -Wall -Werror: printable ASCII only (a line break, a bidi control character or any
    other non-ASCII character is written as <U+XXXX>, so no name can reorder or end the
    line), no comment delimiters (``*/`` would end it, ``/*`` warns), no trigraphs (``??/``
    is a backslash in C99, and before a line break splices lines)."""
    out = "".join(c if " " <= c <= "~" else f"<U+{ord(c):04X}>" for c in text)
    out = out.replace("*/", "* /").replace("/*", "/ *")
    while "??" in out:
        out = out.replace("??", "? ?")
    return out
