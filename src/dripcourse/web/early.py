"""The pages of "Get the next lesson now" (`app/early.py`): a GET shows a button and changes
nothing (mail scanners fetch every link), the button's POST asks for the lesson. A forged or
tampered link gets the 400 page of every bad link (`web/app.py`'s error handler)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from dripcourse.app.early import Answer, EarlyResult, ask_early, early_link
from dripcourse.mail.tokens import Purpose
from dripcourse.web.context import WebContext
from dripcourse.web.public import Context, page

router = APIRouter(include_in_schema=False)

_STATUS_WORDS = {
    "paused": "is paused",
    "unsubscribed": "has ended: you unsubscribed",
    "completed": "is complete: you have had every lesson",
    "pending": "has not started: it waits for you to confirm your address",
}


@router.get("/early/{token}", response_class=HTMLResponse)
def early_page(request: Request, token: str, context: Context) -> HTMLResponse:
    payload = context.signer.read(Purpose.EARLY, token)
    with context.database.read() as session:
        link = early_link(session, int(payload.get("e", 0)))
    return page(
        request,
        "early.html",
        title="Can't wait for the next lesson?",
        brand=link.brand,
        accent=link.accent,
        text=[
            f"Press the button and the next lesson of {link.course_title} is sent to you "
            "within a few minutes, instead of on its usual day."
        ],
        ask=True,
    )


@router.post("/early/{token}", response_class=HTMLResponse)
async def early(request: Request, token: str, context: Context) -> HTMLResponse:
    payload = context.signer.read(Purpose.EARLY, token)
    enrollment_id, lesson_id = int(payload.get("e", 0)), int(payload.get("l", 0))
    result = await run_in_threadpool(_ask, context, enrollment_id, lesson_id)
    if result.answer == Answer.QUEUED:
        context.wake()
    title, text = _answer_words(result)
    return page(
        request,
        "early.html",
        title=title,
        brand=result.brand,
        accent=result.accent,
        text=text,
        ask=False,
    )


def _ask(context: WebContext, enrollment_id: int, lesson_id: int) -> EarlyResult:
    with context.database.transaction() as session:
        return ask_early(session, enrollment_id, lesson_id, context.clock.now())


def _answer_words(result: EarlyResult) -> tuple[str, list[str]]:
    lesson = f"“{result.next_title}”" if result.next_title else "The next lesson"
    match result.answer:
        case Answer.QUEUED:
            return "It's on its way", [
                f"{lesson} is being sent to you now: look in your inbox in a few minutes.",
                "The lessons after it keep their usual spacing, counted from today.",
            ]
        case Answer.ON_ITS_WAY:
            return "Already on its way", [
                f"{lesson} is already on its way to you: there is nothing more to do.",
            ]
        case Answer.ALREADY_SENT:
            return "Already sent", [
                "The lesson after this one has already been sent to you: look for it in your "
                "inbox. Each lesson's own link asks for the one after it.",
            ]
        case Answer.LAST:
            return "That was the last lesson", [
                f"You have had every lesson of {result.course_title}. Well done!",
            ]
        case Answer.HELD:
            return "Nothing to send", [
                f"{result.course_title} no longer sends to your address, so no lesson was sent. "
                "If you did not mean that, write to us and we will sort it out.",
            ]
        case Answer.NOT_OFFERED:
            return "Not available", [
                f"{result.course_title} no longer sends lessons early: the next one comes on "
                "its usual day.",
            ]
    state = _STATUS_WORDS.get(result.status, f"is {result.status}")
    return "Nothing to send", [
        f"Your subscription to {result.course_title} {state}, so no lesson was sent.",
    ]
