"""LibreTranslate's file translation: POST /translate_file (multipart: file, source, target, api_key)
answers {"translatedFileUrl"}, and GET /download_file/{filename} gives the translated file back.

The document is read by seq2seq.inference.files (its suffix picks the reader; a file it cannot read
is a 400), each of its units is planned as /translate plans a q, all their sentences go to the
queue at once, and the document writes itself back with the translations. The translated file is
kept in the server's FileStore (seq2seq.serve.downloads) until it expires.
"""

from __future__ import annotations

import asyncio
import mimetypes
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response

from seq2seq.inference.output import clean_line, one_line
from seq2seq.serve import openapi as api
from seq2seq.serve.dependencies import State, check_rate, read_request, require_key
from seq2seq.serve.detection import source_language
from seq2seq.serve.inputs import InputError, Upload
from seq2seq.serve.routes import error_response, json_response, queued_translations

if TYPE_CHECKING:
    from seq2seq.inference.files import Document
    from seq2seq.inference.text import Plan

router = APIRouter()


@router.post(
    "/translate_file",
    openapi_extra={**api.body(api.TranslateFileForm, "multipart/form-data"), "parameters": [api.API_KEY]},
    responses=api.answers(api.TranslatedFile, 400, 403, 413, 415, 429, 501, 503),
)
async def translate_file(request: Request) -> Response:
    """LibreTranslate's /translate_file: the document translated, its paragraphs and formatting kept;
    the answer is the URL to download it from (for --file-ttl seconds, 30 minutes by default)."""
    state, fields = await read_request(request)
    meta = state.translator.meta
    check_rate(request, state, fields)
    upload = fields.get("file")
    if not isinstance(upload, Upload):
        raise InputError(400, "Invalid request: missing file parameter: send the document as the multipart/form-data field file", "file")
    if not upload.filename:
        raise InputError(400, "Invalid request: empty file name: the file field needs a name with its suffix, e.g. report.docx", "file")
    source, target = fields.get("source") or meta.src_lang, fields.get("target") or meta.tgt_lang
    if source not in ("auto", meta.src_lang) or target != meta.tgt_lang:
        raise InputError(
            400,
            f"this server translates {meta.src_lang} to {meta.tgt_lang} (source {meta.src_lang!r} or 'auto', target {meta.tgt_lang!r}); got source {source!r}, target {target!r}",
        )
    document, plans = await read_and_plan(upload, meta.src_lang)
    sentences = [s for p in plans for s in p.sentences]
    if source == "auto":
        await source_language(sentences, meta.src_lang)
    results = await queued_translations(request, state, [clean_line(s) for s in sentences], state.settings.defaults)
    if isinstance(results, Response):
        return results
    translated, start = [], 0
    for p in plans:
        translated.append(p.join([one_line(hyps[0].text) for hyps in results[start : start + len(p.sentences)]]))
        start += len(p.sentences)
    data = await asyncio.to_thread(document.write, translated)
    name = state.files.put(data, upload.filename)
    return json_response({"translatedFileUrl": f"{str(request.base_url).rstrip('/')}/download_file/{name}"})


@router.get("/download_file/{filename}", responses=api.text_answer("*/*", "The translated file, under the name it was sent with", 403, 404))
async def download_file(request: Request, state: State, filename: str) -> Response:
    """A file /translate_file made, while it lasts (404 once it expired or where there is no such name)."""
    await require_key(request, state)
    stored = state.files.get(filename)
    if stored is None:
        return error_response(404, f"no file {filename!r}: it expired (files are kept {state.files.ttl / 60:g} minutes) or was never made; translate it again")
    media = mimetypes.guess_type(stored.filename)[0] or "application/octet-stream"
    data = await asyncio.to_thread(stored.path.read_bytes)
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{stored.filename}"'})


async def read_and_plan(upload: Upload, src_lang: str) -> tuple[Document, list[Plan]]:
    """The document (seq2seq.inference.files.read_document) and each unit's plan, in a thread: a 400 for a
    file that cannot be read, a 501 where the reader's package is missing."""
    try:
        from seq2seq.inference.files import FileError, read_document
        from seq2seq.inference.text import plan
    except ImportError as err:
        raise InputError(501, f"file translation is not installed on this server ({err}); install seq2seq[serve]") from None

    def work() -> tuple[Document, list[Plan]]:
        document = read_document(upload.data, upload.filename)
        return document, [plan(text, fmt, language=src_lang) for text, fmt in zip(document.texts, document.formats)]

    try:
        return await asyncio.to_thread(work)
    except FileError as err:
        raise InputError(400, f"Invalid request: {err}", "file") from None
    except ImportError as err:
        raise InputError(501, f"reading {upload.filename!r} needs a package this server lacks ({err}); install seq2seq[serve]", "file") from None
    except ValueError as err:  # a unit that cannot be planned (e.g. markup the HTML planner refuses)
        raise InputError(400, f"Invalid request: {upload.filename!r} cannot be read: {err}", "file") from None
