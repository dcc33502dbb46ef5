"""Jinja2's mistakes in a course author's words: the name that is unknown and those that exist, and
the line a block that is never closed was opened on.

Jinja2 speaks of its own objects (`'dripcourse.mail.rendering.Recipient object' has no attribute
'surname'`) and reports a missing `{% endif %}` where the template ends, often far from the `{% if %}`.
`AuthorUndefined`, the undefined type of every course template (see `sandbox.py`), raises
`UnknownName`, which keeps the object asked and the name asked for; `describe` finds the expression
as the author wrote it (`subscriber.surname`) and lists the fields that do exist. At send time, without
the template at hand, the message is the same less the expression's owner.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import NoReturn

import jinja2
from jinja2 import nodes
from jinja2.utils import internalcode, missing

# Blocks that need an `{% end... %}`; `set` only in its block form, `{% set x %}...{% endset %}`.
_BLOCK_TAGS = {
    "if",
    "for",
    "block",
    "macro",
    "call",
    "filter",
    "with",
    "autoescape",
    "set",
    "trans",
}
_PARSER = jinja2.Environment()
"""Course templates use Jinja's default syntax; their environment's options only change whitespace."""


class UnknownName(jinja2.UndefinedError):
    """A template asked for a variable, a field or an item that is not there."""

    def __init__(self, owner: object, name: object) -> None:
        self.owner = owner
        """What the name was asked of; `jinja2.utils.missing` for a top-level variable."""
        self.name = name
        super().__init__(self.in_words())

    def in_words(self, written: str | None = None, variables: Iterable[str] = ()) -> str:
        """The message; `written` is the owner as the template wrote it (`subscriber`), and
        `variables` the names a template sees, for an unknown top-level variable."""
        if self.owner is missing:
            known = ", ".join(sorted(variables))
            return f"unknown variable {self.name}" + (f"; known: {known}" if known else "")
        if not isinstance(self.name, str) and isinstance(self.owner, Sized):
            return f"no item {self.name!r} in {written or 'the list'}; it has {len(self.owner)}"
        field = f"{written}.{self.name}" if written else str(self.name)
        known = ", ".join(fields_of(self.owner))
        if not known:
            return f"unknown field {field} ({type(self.owner).__name__} has no fields)"
        return f"unknown field {field}; known: {known}"


class AuthorUndefined(jinja2.StrictUndefined):
    """StrictUndefined that raises `UnknownName`; the sandbox's refusals (which carry a hint) and
    Jinja's own undefined values without a name are left as Jinja2 words them."""

    __slots__ = ()

    @internalcode
    def _fail_with_undefined_error(self, *args: object, **kwargs: object) -> NoReturn:
        if isinstance(self._undefined_obj, jinja2.Undefined):
            # Asked of something undefined (`foo.bar`, `x.__class__.__init__`): the first mistake
            # is the one to fix, and this one's type name means nothing to an author.
            self._undefined_obj._fail_with_undefined_error()
        if self._undefined_hint is None and self._undefined_name is not None:
            raise UnknownName(self._undefined_obj, self._undefined_name)
        super()._fail_with_undefined_error(*args, **kwargs)


# Jinja2 binds each operation (`__str__`, `__bool__`, `__getitem__`, ...) to the base class's
# function, not to the method's name, so an override alone would never run: bind them again.
for _operation, _function in {**vars(jinja2.Undefined), **vars(jinja2.StrictUndefined)}.items():
    if _function is jinja2.Undefined._fail_with_undefined_error:
        setattr(AuthorUndefined, _operation, AuthorUndefined._fail_with_undefined_error)


def fields_of(owner: object) -> list[str]:
    """The fields a template can read of `owner`, sorted: keys, dataclass fields and properties."""
    if isinstance(owner, Mapping):
        names = [str(key) for key in owner]
    elif dataclasses.is_dataclass(owner):
        names = [field.name for field in dataclasses.fields(owner)]
        names += [name for name, value in vars(type(owner)).items() if isinstance(value, property)]
    else:
        names = list(getattr(owner, "__dict__", {}))
    return sorted(name for name in names if not name.startswith("_"))


def describe(exc: BaseException, sources: Mapping[str, str], variables: Iterable[str] = ()) -> str:
    """The message of an error raised while rendering the templates named in `sources`."""
    if isinstance(exc, UnknownName):
        return exc.in_words(_written_owner(exc, sources), variables)
    if isinstance(exc, jinja2.TemplateError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def template_line(exc: BaseException, name: str) -> int | None:
    """The line of template `name` that raised `exc`, from the frames of its traceback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == name]
    return frames[-1].lineno if frames else None


def syntax_line(exc: jinja2.TemplateSyntaxError) -> int:
    """The line to show for a syntax error: for a block never closed, the line it opened on."""
    if exc.message and exc.message.startswith("Unexpected end of template") and exc.source:
        return unclosed_block_line(exc.source) or exc.lineno
    return exc.lineno


def unclosed_block_line(source: str) -> int | None:
    """The line of the innermost block tag of `source` that no `{% end... %}` closes."""
    try:
        tokens = [(line, kind, value) for line, kind, value in _PARSER.lex(source)]
    except jinja2.TemplateSyntaxError:
        return None
    tags = [t for t in tokens if t[1] not in ("whitespace", "comment")]
    opened: list[tuple[str, int]] = []
    for index, (line, kind, _value) in enumerate(tags[:-1]):
        following, name = tags[index + 1][1], tags[index + 1][2]
        if kind != "block_begin" or following != "name":
            continue
        if name in _BLOCK_TAGS and not (name == "set" and _assigns(tags[index + 2 :])):
            opened.append((name, line))
        elif name.startswith("end") and opened and opened[-1][0] == name[3:]:
            opened.pop()
    return opened[-1][1] if opened else None


def _assigns(tags: list[tuple[int, str, str]]) -> bool:
    """Whether the tag that starts the list is `{% set x = ... %}` (no block to close)."""
    for _line, kind, value in tags:
        if kind == "block_end":
            return False
        if kind == "operator" and value == "=":
            return True
    return False


def _written_owner(exc: UnknownName, sources: Mapping[str, str]) -> str | None:
    """The expression the unknown name was asked of, as written at the line that raised it (or,
    if that line does not hold it, anywhere in the template), if it was written one way only."""
    for name, source in sources.items():
        line = template_line(exc, name)
        if line is None:
            continue
        try:
            tree = _PARSER.parse(source)
        except jinja2.TemplateSyntaxError:
            return None
        asked = [owner for owner in _askings(tree, exc.name)]
        for candidates in ([o for o in asked if o.lineno == line], asked):
            written = {_as_written(owner) for owner in candidates}
            if len(written) == 1:
                return written.pop()
        return None
    return None


def _askings(tree: nodes.Template, name: object) -> Iterator[nodes.Node]:
    """The expressions that `name` is asked of in `tree`, as `owner.name` or `owner[name]`."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if (isinstance(node, nodes.Getattr) and node.attr == name) or (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and node.arg.value == name
        ):
            yield node.node


def _as_written(node: nodes.Node) -> str | None:
    """`subscriber`, `course.links`, `lesson.exercises[0]`; None for anything but names and fields."""
    if isinstance(node, nodes.Name):
        return str(node.name)
    if isinstance(node, nodes.Getattr):
        owner = _as_written(node.node)
        return f"{owner}.{node.attr}" if owner else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        owner = _as_written(node.node)
        key = node.arg.value
        return (
            (f"{owner}.{key}" if isinstance(key, str) else f"{owner}[{key!r}]") if owner else None
        )
    return None
