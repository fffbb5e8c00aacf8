"""What every UI event and agent tool shares: the guard (rate limit, error mapping, metrics, the log), the upload
rule, and the served copies of result pictures. A refusal becomes the UI's error box with the guard's message."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from sqlalchemy.exc import SQLAlchemyError

from mmsearch.feedback.loop import Feedback, NotRecording
from mmsearch.feedback.searchlog import EventError
from mmsearch.search.results import Hit
from mmsearch.serve.guard import Guard, Refusal, uploaded_file
from mmsearch.ui.pictures import ServedPictures

TITLES = {
    "busy": "Busy",
    "StoreUnavailable": "Cannot search",
    "database_down": "Database out of reach",
}  # the error box's title by kind of refusal


class Events:
    def __init__(self, guard: Guard, feedback: Feedback):
        self.guard = guard  # the REST routes' too (mmsearch/service.py)
        self.feedback = feedback
        self.pictures = ServedPictures(Path(get_upload_folder()) / "mmsearch-pictures")

    def upload(self, image) -> str | None:
        """The path of an image input, only if this server received it as an upload (else a refusal)."""
        return uploaded_file(image, get_upload_folder())

    @staticmethod
    def client(request: gr.Request | None) -> str:
        return request.client.host if request is not None and request.client else "local"

    def clicked(self, shown: dict, request: gr.Request | None) -> None:
        """A click on a result in the gallery, kept as an event on its answer (never failing the click itself)."""
        if not shown.get("query_id"):
            return
        position, client = int(shown.get("position") or 0), self.client(request)
        try:
            self.feedback.event(shown["query_id"], shown["item_id"], position, "click", client)
        except (NotRecording, EventError, SQLAlchemyError):  # not recorded, or not keepable: the click still works
            return

    def gallery(self, results: list[Hit]) -> list[tuple[str, str]]:
        return [(self.pictures.path(r.image), r.caption()) for r in results]

    def run(self, endpoint: str, request: gr.Request | None, work, query: str | None = None, title: str = ""):
        """Runs one event through the guard. ``work`` returns the event's outputs and the ``Answer`` (or listing)
        it showed, whose mode, kind and count go into the metrics and the log."""
        client = self.client(request)
        try:
            with self.guard.request(endpoint, client, query=query) as outcome:
                self.guard.admit(outcome)
                outputs, answer = work()
                outcome.mode, outcome.kind = getattr(answer, "mode", ""), getattr(answer, "kind", "item")
                outcome.results = len(answer) if isinstance(answer, list) else 1
                return outputs
        except Refusal as refused:
            raise gr.Error(
                refused.message, duration=None, title=title or TITLES.get(refused.kind, "Cannot search")
            ) from refused
