"""A discarding SMTP server on aiosmtpd, for machines without Postfix's smtp-sink."""

from __future__ import annotations

import sys
import threading

from aiosmtpd.controller import Controller


class Discard:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


if __name__ == "__main__":
    controller = Controller(Discard(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    threading.Event().wait()
