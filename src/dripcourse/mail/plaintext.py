"""Markdown for email: the HTML part's body and a readable plain-text twin of it.

A lesson body is CommonMark. `markdown_to_html` renders it for the HTML part with raw HTML switched
off, so a personalised value that looks like markup (a subscriber called `<b>Ann</b>`) is shown as
written. `markdown_to_text` renders the same source for the `text/plain` part by walking
markdown-it's syntax tree (never by scraping the HTML): paragraphs wrapped at a width, underlined
headings, "- " and "1. " lists with hanging indents, "> " quotes, code indented four spaces, and
links as numbered footnotes gathered in a "Links:" section at the end, as text mail has long done;
a bare address the HTML part makes a link of (linkify) stays in the text once, as written.

Words are never split or rewritten, so URLs survive wrapping and the placeholder tokens the renderer
puts in place of Jinja expressions (`DCJ0001Z`) come out exactly as they went in.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode
from markdown_it.utils import OptionsDict

__all__ = ["Placed", "markdown_images", "markdown_to_html", "markdown_to_text"]


class Placed(NamedTuple):
    """Where an image of the course folder is served from, and its display size (CSS px)."""

    url: str
    width: int
    height: int


ImagePlacer = Callable[[str], Placed | None]
"""Gives the served image for a path as written in a lesson (`images/dead-bug.png`), or None."""


class WrittenImage(NamedTuple):
    """A Markdown image of a lesson body, as its author wrote it."""

    src: str
    alt: str
    line: int
    """0-based line of the body it is on."""


# One parser for both renderings, so the HTML and the text part read the same source the same way.
# Raw HTML is off: "<b>" in a lesson is text, escaped in the HTML part and kept as-is in the text
# part. The "commonmark" preset has the typographer off (straight quotes stay straight).
_PARSER = MarkdownIt("commonmark", {"html": False, "linkify": True}).enable("linkify")
# Linkify (linkify-it-py) makes a bare `https://...`, `http://`, `ftp://` or `mailto:` address a
# link, and an email address a mailto: link. Not a scheme-less name: with "fuzzy" links on,
# `01-feet.md` and `README.md` become links to http://01-feet.md (.md is Moldova's domain).
# Not `//host/path` either: an email has no page whose scheme it could borrow.
assert _PARSER.linkify is not None  # markdown-it-py sets it when linkify-it-py is installed
_PARSER.linkify.set({"fuzzy_link": False})
_PARSER.linkify.add("//", None)

# Characters str.splitlines() breaks on, besides "\n": they would make the line structure of the
# text part ambiguous, so inside prose they count as a space.
_LINE_BREAKERS = "\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_AS_SPACE = str.maketrans(dict.fromkeys(_LINE_BREAKERS, " "))


def markdown_to_html(markdown: str, images: ImagePlacer | None = None) -> str:
    """Render CommonMark to an HTML fragment; raw HTML in the source is escaped, not passed.

    An image that `images` places gets its served address, width and height; any other image is
    written as markdown-it writes it.
    """
    html: str = _PARSER.render(markdown, {"images": images})
    return html


def _render_image(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any
) -> str:
    token = tokens[idx]
    placer: ImagePlacer | None = env.get("images") if isinstance(env, dict) else None
    placed = placer(unquote(str(token.attrGet("src") or ""))) if placer else None
    if placed is None:
        return self.image(tokens, idx, options, env)
    alt = self.renderInlineAsText(token.children or [], options, env)
    # Width and height are the display size: the layout's `max-width: 100%; height: auto`
    # lets a phone scale it down, and the space is kept while it loads (or is blocked).
    return (
        f'<img src="{escapeHtml(placed.url)}" alt="{escapeHtml(alt)}" '
        f'width="{placed.width}" height="{placed.height}">'
    )


_PARSER.add_render_rule("image", _render_image)


def markdown_images(markdown: str) -> list[WrittenImage]:
    """Every image of a Markdown body, in order, with the line it is on (for `file:line`)."""
    lines = markdown.splitlines()
    found: list[WrittenImage] = []
    for block in _PARSER.parse(markdown):
        if block.type != "inline" or not block.children or block.map is None:
            continue
        start, end = block.map
        for token in _images_of(block.children):
            src = unquote(str(token.attrGet("src") or ""))
            alt = " ".join(
                _plain(SyntaxTreeNode(token.children or [], create_root=True).children).split()
            )
            line = next(
                (n for n in range(start, min(end, len(lines))) if src in unquote(lines[n])),
                start,
            )
            found.append(WrittenImage(src, alt, line))
    return found


def _images_of(tokens: Sequence[Token]) -> list[Token]:
    images = []
    for token in tokens:
        if token.type == "image":
            images.append(token)
        elif token.children:
            images.extend(_images_of(token.children))
    return images


def markdown_to_text(markdown: str, width: int = 72) -> str:
    """Render CommonMark to plain text wrapped at `width`, ending with exactly one newline.

    Only a word too long to fit (a URL, say) or a line of code, both kept whole, may run past the
    width. A source with no content gives the empty string.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1, not {width}")
    root = SyntaxTreeNode(_PARSER.parse(markdown))
    links = _Links()
    blocks = _render_blocks(root.children, width, links)
    if links.urls:
        blocks.append("\n".join(["Links:", *(f"[{n}] {url}" for n, url in links.numbered())]))
    # A code block may end in blank lines of its own; the text ends with exactly one newline.
    text = "\n\n".join(blocks).rstrip("\n")
    return text + "\n" if text else ""


@dataclass
class _Links:
    """The footnotes of one document: each distinct URL gets one number, in order of first use."""

    urls: dict[str, int] = field(default_factory=dict)

    def number(self, url: str) -> int:
        return self.urls.setdefault(url, len(self.urls) + 1)

    def numbered(self) -> list[tuple[int, str]]:
        return [(n, url) for url, n in self.urls.items()]


# -- blocks ------------------------------------------------------------------------------------
#
# Each block renders to a string of lines without trailing spaces; empty blocks are dropped so
# that blocks are always separated by exactly one blank line.


def _render_blocks(nodes: Sequence[SyntaxTreeNode], width: int, links: _Links) -> list[str]:
    rendered = (_render_block(node, width, links) for node in nodes)
    return [block for block in rendered if block.strip()]


def _render_block(node: SyntaxTreeNode, width: int, links: _Links) -> str:
    kind = node.type
    if kind == "paragraph":
        return _wrap(_render_inline(node, links), width)
    if kind == "heading":
        return _heading(node, width, links)
    if kind == "bullet_list":
        return _list(node, width, links, ordered=False)
    if kind == "ordered_list":
        return _list(node, width, links, ordered=True)
    if kind == "blockquote":
        inner = "\n\n".join(_render_blocks(node.children, max(width - 2, 1), links))
        if not inner:
            return ""
        return "\n".join("> " + line if line else ">" for line in inner.split("\n"))
    if kind in ("code_block", "fence"):
        return _code(node.content)
    if kind == "hr":
        return "-" * width
    # Anything else (a plugin's block, say) still shows its words.
    return _wrap(_render_inline(node, links), width)


def _heading(node: SyntaxTreeNode, width: int, links: _Links) -> str:
    underline = {"h1": "=", "h2": "-"}.get(node.tag)
    if underline is None:
        # Deeper headings keep their Markdown marker, which plain-text readers know.
        marker = node.markup + " "
        text = _wrap(_render_inline(node, links), max(width - len(marker), 1))
        return _prefix_lines(text, marker, " " * len(marker)) if text else ""
    text = _wrap(_render_inline(node, links), width)
    if not text:
        return ""
    longest = max(len(line) for line in text.split("\n"))
    return text + "\n" + underline * min(longest, width)


def _list(node: SyntaxTreeNode, width: int, links: _Links, *, ordered: bool) -> str:
    items = node.children
    if ordered:
        start = _start_number(node)
        markers = [f"{start + i}. " for i in range(len(items))]
        indent = max(len(marker) for marker in markers) if markers else 3
        markers = [marker.ljust(indent) for marker in markers]
    else:
        indent = 2
        markers = ["- "] * len(items)
    tight = _is_tight(node)
    rendered = []
    for item, marker in zip(items, markers, strict=True):
        blocks = _render_blocks(item.children, max(width - indent, 1), links)
        body = ("\n" if tight else "\n\n").join(blocks)
        rendered.append(_prefix_lines(body, marker, " " * indent) if body else marker.rstrip())
    return ("\n" if tight else "\n\n").join(rendered)


def _start_number(node: SyntaxTreeNode) -> int:
    start = node.attrs.get("start", 1)
    return start if isinstance(start, int) else int(str(start))


def _is_tight(node: SyntaxTreeNode) -> bool:
    # markdown-it marks the paragraphs of a tight list hidden (they render without <p>).
    paragraphs = [
        child for item in node.children for child in item.children if child.type == "paragraph"
    ]
    return all(paragraph.hidden for paragraph in paragraphs)


def _code(content: str) -> str:
    lines = content.rstrip("\n").split("\n")
    return "\n".join("    " + line.rstrip() if line.strip() else "" for line in lines)


def _prefix_lines(text: str, first: str, rest: str) -> str:
    """Put `first` before the first line and `rest` before the others (blank lines stay blank)."""
    out = []
    for i, line in enumerate(text.split("\n")):
        prefix = first if i == 0 else rest
        out.append(prefix + line if line else prefix.rstrip() if i == 0 else "")
    return "\n".join(out)


def _wrap(text: str, width: int) -> str:
    """Wrap each hard-broken segment of `text` at `width` without splitting any word."""
    wrapper = textwrap.TextWrapper(
        width=width, break_long_words=False, break_on_hyphens=False, expand_tabs=True
    )
    lines: list[str] = []
    for segment in text.split("\n"):
        wrapped = wrapper.wrap(segment.translate(_AS_SPACE).strip())
        lines.extend(line.rstrip() for line in wrapped)
    # A hard break at the very start or end of a paragraph draws nothing.
    return "\n".join(lines).strip("\n")


# -- inline ------------------------------------------------------------------------------------


def _render_inline(node: SyntaxTreeNode, links: _Links) -> str:
    """The text of `node`'s inline content; "\n" marks a hard break."""
    return "".join(_inline_parts(node.children, links))


def _inline_parts(nodes: Sequence[SyntaxTreeNode], links: _Links) -> list[str]:
    parts: list[str] = []
    for node in nodes:
        kind = node.type
        if kind == "inline":
            parts.extend(_inline_parts(node.children, links))
        elif kind == "text":
            parts.append(node.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "code_inline":
            parts.append(_code_span(node.content, node.markup))
        elif kind == "image":
            alt = " ".join(_plain(node.children).split())
            parts.append(f"[image: {alt}]" if alt else "[image]")
        elif kind == "link":
            parts.append(_link(node, links))
        else:
            # em, strong and anything unknown: the markers go, the words stay.
            parts.extend(_inline_parts(node.children, links))
    return parts


def _plain(nodes: Sequence[SyntaxTreeNode]) -> str:
    """The bare words of inline content, for places that take no markup (an image's alt)."""
    words = []
    for node in nodes:
        if node.type in ("text", "code_inline"):
            words.append(node.content)
        elif node.type in ("softbreak", "hardbreak"):
            words.append(" ")
        else:
            words.append(_plain(node.children))
    return "".join(words)


def _code_span(content: str, markup: str) -> str:
    fence = markup or "`"
    if content.startswith("`") or content.endswith("`"):
        content = f" {content} "
    return f"{fence}{content}{fence}"


def _link(node: SyntaxTreeNode, links: _Links) -> str:
    href = str(node.attrs.get("href", ""))
    text = "".join(_inline_parts(node.children, links))
    label = text.strip()
    # An autolink, a bare address made a link (linkify), or a link whose words are its address
    # already shows where it goes. (The href of the first two may be percent-encoded: the words
    # are what the author wrote.)
    if node.markup in ("autolink", "linkify") or href in (label, "mailto:" + label):
        return text
    if not label:
        return href
    return f"{text} [{links.number(href)}]"
