"""`cdtt activity replay`: send retained support.recorded events to the stream again."""

from __future__ import annotations

import typer

from services.activity.adapters.tables import outbox
from shared.messaging.replay import replay_command

activity_app = typer.Typer(no_args_is_help=True, help="Activity operations.")
activity_app.command("replay")(replay_command("activity", outbox))
