"""The text/plain rendering of lesson Markdown, and the escaping HTML rendering beside it."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from dripcourse.mail.plaintext import markdown_to_html, markdown_to_text

LONG_URL = "https://northside-physio.example/blog/" + "a-very-long-article-slug-" * 4 + "end"


def test_headings_are_underlined_to_their_length() -> None:
    source = "# Feet first\n\n## Why it matters\n\n### The detail\n"

    assert markdown_to_text(source) == (
        "Feet first\n==========\n\nWhy it matters\n--------------\n\n### The detail\n"
    )


def test_emphasis_markers_go_and_inline_code_stays() -> None:
    source = "Keep *your* heel **down**, then type `stretch --slow`."

    assert markdown_to_text(source) == "Keep your heel down, then type `stretch --slow`.\n"


def test_nested_bullet_lists_indent_by_two() -> None:
    source = "- feet\n- ankles\n  - left\n  - right\n- knees\n"

    assert markdown_to_text(source) == "- feet\n- ankles\n  - left\n  - right\n- knees\n"


def test_list_items_wrap_with_a_hanging_indent() -> None:
    source = "- " + "stretch " * 20 + "\n- rest\n"

    assert markdown_to_text(source, width=40) == (
        "- stretch stretch stretch stretch\n"
        "  stretch stretch stretch stretch\n"
        "  stretch stretch stretch stretch\n"
        "  stretch stretch stretch stretch\n"
        "  stretch stretch stretch stretch\n"
        "- rest\n"
    )


def test_loose_lists_keep_a_blank_line_between_items() -> None:
    source = "- one\n\n- two\n\n  more about two\n"

    assert markdown_to_text(source) == "- one\n\n- two\n\n  more about two\n"


def test_ordered_lists_keep_their_start_number_and_align_the_text() -> None:
    assert markdown_to_text("3. warm up\n4. run\n") == "3. warm up\n4. run\n"
    assert markdown_to_text("9. walk\n10. jog\n") == "9.  walk\n10. jog\n"


def test_links_become_numbered_footnotes_and_a_reused_url_keeps_its_number() -> None:
    source = (
        "Read [the guide](https://example.com/guide) and [this page](https://example.com/this), "
        "then [the guide again](https://example.com/guide)."
    )

    assert markdown_to_text(source) == (
        "Read the guide [1] and this page [2], then the guide again [1].\n"
        "\n"
        "Links:\n"
        "[1] https://example.com/guide\n"
        "[2] https://example.com/this\n"
    )


def test_autolinks_and_links_named_by_their_url_are_written_inline() -> None:
    source = (
        "See <https://example.com/auto>, write to <ada@example.com> or open "
        "[https://example.com/plain](https://example.com/plain)."
    )

    assert markdown_to_text(source) == (
        "See https://example.com/auto, write to ada@example.com or open\n"
        "https://example.com/plain.\n"
    )


def test_paragraphs_wrap_at_72_and_a_long_url_is_never_broken() -> None:
    source = "Before you run, read this carefully and slowly: " + LONG_URL + " and then stretch."

    text = markdown_to_text(source)

    assert text == (
        "Before you run, read this carefully and slowly:\n" + LONG_URL + "\nand then stretch.\n"
    )
    assert all(len(line) <= 72 or line == LONG_URL for line in text.splitlines())


def test_jinja_placeholder_tokens_pass_through_unchanged() -> None:
    source = (
        "Hi DCJ0001Z,\n\n**DCJ0002Z** and _DCJ0003Z_ in [the DCJ0004Z plan](https://x.example/?u=DCJ0005Z)"
        " and `DCJ0006Z`.\n\n- DCJ0007Z\n\n# DCJ0008Z\n"
    )

    text = markdown_to_text(source)

    for n in range(1, 9):
        assert f"DCJ000{n}Z" in text
    assert text.startswith("Hi DCJ0001Z,\n\nDCJ0002Z and DCJ0003Z in the DCJ0004Z plan [1]")
    assert "[1] https://x.example/?u=DCJ0005Z\n" in text


def test_quotes_code_rules_images_and_hard_breaks() -> None:
    source = (
        "Roses  \nare red\n\n"
        "> Run *slow*\n>\n> > then fast\n\n"
        "    pip install dripcourse\n\n"
        '```toml\n[theme]\naccent = "#0f766e"\n```\n\n'
        "***\n\n"
        "![A relaxed foot](foot.png) ![](blank.png)\n"
    )

    rule = "-" * 40
    assert markdown_to_text(source, width=40) == (
        "Roses\nare red\n\n"
        "> Run slow\n>\n> > then fast\n\n"
        "    pip install dripcourse\n\n"
        '    [theme]\n    accent = "#0f766e"\n\n'
        f"{rule}\n\n"
        "[image: A relaxed foot] [image]\n"
    )


def test_output_ends_with_exactly_one_newline_and_nothing_gives_nothing() -> None:
    assert markdown_to_text("Hello\n\n\n\n") == "Hello\n"
    assert markdown_to_text("") == ""
    assert markdown_to_text("   \n\n") == ""


def test_raw_html_is_escaped_in_the_html_rendering() -> None:
    html = markdown_to_html("Hi <b>Ann</b>\n\n<script>alert(1)</script>\n")

    assert "&lt;b&gt;Ann&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>" not in html
    assert "<script" not in html


def test_html_rendering_is_commonmark_with_bare_urls_made_links() -> None:
    html = markdown_to_html('A "quote" -- and https://example.com and [a](https://e.example)\n')

    # No typographer (straight quotes, two hyphens); linkify makes the bare URL a link.
    assert html == (
        '<p>A &quot;quote&quot; -- and <a href="https://example.com">https://example.com</a>'
        ' and <a href="https://e.example">a</a></p>\n'
    )


BARE = (
    "See https://example.org/x, or https://example.org/café. Write to ada@example.org.\n"
    "\n"
    "Not links: 01-feet.md, README.md, www.example.org, //cdn.example.org/x and"
    " `https://example.org/code`.\n"
)


def test_bare_urls_and_email_addresses_become_links_in_html() -> None:
    html = markdown_to_html(BARE)

    assert 'See <a href="https://example.org/x">https://example.org/x</a>, or ' in html
    assert '<a href="https://example.org/caf%C3%A9">https://example.org/café</a>. ' in html
    assert 'Write to <a href="mailto:ada@example.org">ada@example.org</a>.' in html
    # Only what has a scheme (or an @): file names are not web addresses.
    assert html.count("<a ") == 3
    assert "<code>https://example.org/code</code>" in html


def test_a_bare_url_stays_in_the_text_once_as_written() -> None:
    assert markdown_to_text(BARE) == (
        "See https://example.org/x, or https://example.org/café. Write to\n"
        "ada@example.org.\n"
        "\n"
        "Not links: 01-feet.md, README.md, www.example.org, //cdn.example.org/x\n"
        "and `https://example.org/code`.\n"
    )


# -- properties --------------------------------------------------------------------------------

MARKERS = re.compile(r">|-|\d+\.|\[\d+\]|#+")

markdownish = st.lists(
    st.sampled_from(
        [
            "# ",
            "## ",
            "### ",
            "- ",
            "* ",
            "1. ",
            "7) ",
            "> ",
            "    ",
            "```\n",
            "~~~",
            "*",
            "_",
            "**",
            "`",
            "[a link](https://example.com/x)",
            "[b](https://example.com/y)",
            "<https://example.com/auto>",
            "see https://example.com/bare.",
            "![alt](i.png)",
            "\n",
            "\n\n",
            " ",
            "  \n",
            "\\\n",
            "word",
            "two words",
            "a longer run of several ordinary words",
            "DCJ0001Z",
            LONG_URL,
            "***",
            "---",
            "===",
            "&amp;",
            "<b>",
            "\t",
            "x" * 90,
        ]
    ),
    max_size=60,
).map("".join)


def code_lines(source: str) -> set[str]:
    """The lines of every code block in `source`: those are kept verbatim, however long."""
    tokens = MarkdownIt("commonmark", {"html": False}).parse(source)
    return {
        line.strip()
        for token in tokens
        if token.type in ("code_block", "fence")
        for line in token.content.split("\n")
        if line.strip()
    }


@settings(max_examples=300, deadline=None)
@given(source=st.one_of(st.text(), markdownish), width=st.integers(min_value=1, max_value=100))
@example(source="> " * 60 + "deep words here", width=72)
@example(source="1. " * 30 + "nested items", width=20)
def test_any_input_renders_within_the_width(source: str, width: int) -> None:
    text = markdown_to_text(source, width=width)

    assert text == "" or (text.endswith("\n") and not text.endswith("\n\n"))
    verbatim = code_lines(source)
    for line in text.split("\n"):
        assert line == line.rstrip(), f"trailing space in {line!r}"
        if len(line) <= width or any(code in line for code in verbatim):
            continue
        # Only one word (besides quote and list markers) may overrun: it could not be broken.
        words = [word for word in line.split(" ") if word and not MARKERS.fullmatch(word)]
        assert len(words) <= 1, f"{line!r} is longer than {width}"


@given(words=st.lists(st.from_regex(r"DCJ[0-9]{4}Z|[a-z]{1,12}", fullmatch=True), max_size=80))
def test_placeholders_survive_any_wrapping(words: list[str]) -> None:
    text = markdown_to_text(" ".join(words), width=30)

    assert text.split() == words
