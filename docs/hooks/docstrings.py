"""Griffe extension: the zoo's plain-text docstrings as Markdown, equations as TeX.

The docstrings are written for `help()` and notebooks: equations are indented blocks of
Unicode (σ, ⊙, x_t, h_{t-1}, an annotation after two spaces), examples are indented code. On
the site, an indented block of equations becomes display math (pymdownx.arithmatex, rendered
by MathJax), another indented block becomes a code block (Python where it parses), and the
body of an `Example:` section becomes a Python code block. An argument line naming several
arguments (`start_id, end_id: ...`) becomes one item per argument.
"""

from __future__ import annotations

import ast
import re
import textwrap
import unicodedata

import griffe

# What marks a block as equations rather than code or a listing.
MATH_MARK = re.compile(r"[σ⊙ᵀ√Σ∑ΠΔγβεĩõ\u0303]|[A-Za-z]'?_(\{|[a-z]\b)|\^\{")
SECTION = re.compile(r"^([A-Z][A-Za-z ]*):\s*$")
# Google-style sections whose indented lines are items (name: description), not blocks.
SHARED_ARG = re.compile(r"^    (\w+(?:, \w+)+): (.*)$")  # `start_id, end_id: the tokens...`
FIELD_SECTIONS = {
    "args",
    "arguments",
    "parameters",
    "keyword args",
    "other parameters",
    "returns",
    "yields",
    "receives",
    "raises",
    "warns",
    "attributes",
}
GREEK = {
    "σ": r"\sigma",
    "Δ": r"\Delta",
    "γ": r"\gamma",
    "β": r"\beta",
    "ε": r"\varepsilon",
    "π": r"\pi",
    "α": r"\alpha",
    "λ": r"\lambda",
    "μ": r"\mu",
}
SYMBOLS = {
    "⊙": r"\odot",
    "·": r"\cdot",
    "×": r"\times",
    "±": r"\pm",
    "Σ": r"\sum",
    "∑": r"\sum",
    "Π": r"\prod",
    "ᵀ": r"^\top",
    "≤": r"\le",
    "≥": r"\ge",
    "→": r"\to",
    "<=": r"\le",
    ">=": r"\ge",
    "->": r"\to",
    "...": r"\ldots",
    "..": r"\ldots",
}
TEX_FUNCTIONS = {"tanh", "exp", "log", "max", "min"}
# English words that make a trailing segment of an equation line an annotation.
PROSE = re.compile(
    r"(^\()|\b(the|a|an|of|for|per|if|or|and|when|while|without|with|each|"
    r"one|over|then|is)\b|[A-Za-z]{3,}[ ,;]+[A-Za-z]{3,}"
)
WORD = re.compile(r"(?<![\\\w^_])([A-Za-z][A-Za-z]+)(?:(?=[(_])|\b)")
SUBSCRIPT = re.compile(r"_([A-Za-z0-9]{2,})")
SYMBOL = re.compile(r"[_^σ⊙ᵀΔγĩõ\u0303]")  # a token of an annotation that is math


class PlainTextDocstrings(griffe.Extension):
    """Rewrites every docstring's indented blocks for Markdown when griffe reads it."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)


def to_markdown(text: str) -> str:
    """`text` (a cleaned docstring) with its indented blocks fenced or turned into math."""
    lines, out, section, i = text.splitlines(), [], None, 0
    while i < len(lines):
        line = lines[i]
        if line and not line[0].isspace():  # a section header, or free text again
            match = SECTION.match(line)
            section = match.group(1).lower() if match else None
        example = section in ("example", "examples")
        block_start = (
            line.startswith("    ")
            and section not in FIELD_SECTIONS
            and (i == 0 or not lines[i - 1].strip() or example and SECTION.match(lines[i - 1]))
        )
        if section in ("args", "arguments") and (names := SHARED_ARG.match(line)):
            end = i + 1
            while end < len(lines) and lines[end].startswith("        "):
                end += 1
            for name in names.group(1).split(", "):  # griffe reads one name per item
                out += [f"    {name}: {names.group(2)}", *lines[i + 1 : end]]
            i = end
            continue
        if not block_start:
            out.append(line)
            i += 1
            continue
        end = i
        while end < len(lines) and (
            lines[end].startswith("    ")
            or not lines[end].strip()
            and end + 1 < len(lines)
            and lines[end + 1].startswith("    ")
        ):
            end += 1
        block = textwrap.dedent("\n".join(lines[i:end]))
        if example:
            out += textwrap.indent(fence(block, "python"), "    ").splitlines()
        else:
            out += (
                math_block(block)
                if is_math(block)
                else fence(block, "python" if is_python(block) else "text")
            ).splitlines()
        i = end
    return "\n".join(out)


def fence(block: str, language: str) -> str:
    return f"```{language}\n{block}\n```"


def is_python(block: str) -> bool:
    try:
        ast.parse(block)
    except SyntaxError:
        return False
    return True


def is_math(block: str) -> bool:
    return not is_python(block) and bool(MATH_MARK.search(block))


def math_block(block: str) -> str:
    """A block of equation lines as one aligned display: `lhs &= rhs && \\text{annotation}`."""
    rows, base = [], min(len(s) - len(s.lstrip()) for s in block.splitlines() if s.strip())
    for line in block.splitlines():
        if not line.strip():
            continue
        if rows and len(line) - len(line.lstrip()) >= base + 8:  # annotation continued
            rows[-1][1] = f"{rows[-1][1]} {line.strip()}".strip()
            continue
        rows.append(list(split_annotation(line.strip())))
    body = " \\\\\n".join(
        aligned(r" \quad ".join(map(tex, equations))) + (f" && {text_tex(note)}" if note else "")
        for equations, note in rows
    )
    return f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$"


def split_annotation(line: str) -> tuple[list[str], str]:
    """([equations], annotation) of a line: segments two spaces apart; prose ends the math."""
    segments = re.split(r"\s{2,}", re.sub(r"\s{2,}=\s", " = ", line))
    for k in range(1, len(segments)):
        if PROSE.search(segments[k]):
            return segments[:k], "  ".join(segments[k:])
    return segments, ""


def aligned(equation: str) -> str:
    """`lhs &= rhs` at the first top-level `=`, else `& equation`."""
    depth = 0
    for k, char in enumerate(equation):
        depth += char in "([{" and equation[k - 1 : k] != "\\"
        depth -= char in ")]}" and equation[k - 1 : k] != "\\"
        if char == "=" and depth == 0 and equation[k - 1 : k] not in "<>!\\":
            return f"{equation[:k]}&{equation[k:]}"
    return f"&{equation}"


def tex(math: str) -> str:
    """A line of Unicode math (σ(W_i x_t + U_i h_{t-1})) as TeX."""
    math = _escape_set_braces(unicodedata.normalize("NFD", math))
    math = re.sub(r"(\w)\u0303", r"\\tilde{\1}", math)  # combining tilde: h̃ -> \tilde{h}
    math = unicodedata.normalize("NFC", math)
    math = re.sub(r"(\w)\*", r"\1^{*}", math)  # c*_{t-1}: a starred symbol
    math = math.replace(" * ", r" \ast ")  # a convolution
    math = re.sub(r"√(\w+)", r"\\sqrt{\1}", math)
    math = _sqrt_calls(math)
    math = re.sub(r"_<(\w)", r"_{<\1}", math)
    math = SUBSCRIPT.sub(
        lambda m: (
            "_{"
            + (
                rf"\text{{{m.group(1)}}}"
                if len(m.group(1)) > 2 and m.group(1).isalpha()
                else m.group(1)
            )
            + "}"
        ),
        math,
    )
    math = WORD.sub(_word, math)
    for symbol, macro in {**GREEK, **SYMBOLS}.items():
        math = math.replace(symbol, macro + (" " if macro[-1].isalpha() else ""))
    return math.strip()


def _word(match) -> str:
    word, after = match.group(1), match.string[match.end() : match.end() + 1]
    if word in TEX_FUNCTIONS:
        return f"\\{word} "
    if after in "(_":
        return rf"\operatorname{{{word}}}"
    return rf"\text{{{word}}}"


def _escape_set_braces(math: str) -> str:
    """`{` after `_` or `^` groups (TeX); any other brace is a literal set brace."""
    out, stack = [], []
    for k, char in enumerate(math):
        if char == "{":
            grouping = k > 0 and math[k - 1] in "_^"
            stack.append(grouping)
            out.append("{" if grouping else r"\{")
        elif char == "}" and stack:
            out.append("}" if stack.pop() else r"\}")
        else:
            out.append(char)
    return "".join(out)


def _sqrt_calls(math: str) -> str:
    """sqrt(x + y) -> \\sqrt{x + y}, parentheses matched."""
    while (start := math.find("sqrt(")) >= 0:
        depth, k = 0, start + 4
        for k in range(start + 4, len(math)):
            depth += {"(": 1, ")": -1}.get(math[k], 0)
            if depth == 0:
                break
        math = f"{math[:start]}\\sqrt{{{math[start + 5 : k]}}}{math[k + 1 :]}"
    return math


def text_tex(note: str) -> str:
    """An annotation as TeX text, its symbols (c_{t-1}, σ(f̃)) as inline math inside it."""
    out = []
    for token in re.split(r"(\s+)", note.replace("`", "")):
        core = token.rstrip(",;:.")
        while core.endswith(")") and core.count(")") > core.count("("):
            core = core[:-1]
        lead = "(" if core.startswith("(") and core.count("(") > core.count(")") else ""
        symbol = core[len(lead) :]
        if SYMBOL.search(symbol) and not re.match(r"[A-Za-z]{3,}_", symbol):
            out.append(lead + rf"\({tex(symbol)}\)" + _text_escape(token[len(core) :]))
        else:
            out.append(_text_escape(token))
    return rf"\text{{{''.join(out)}}}"


def _text_escape(text: str) -> str:
    return re.sub(r"([_{}%&#$])", r"\\\1", text)
