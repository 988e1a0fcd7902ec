"""Issues written in the workspace: front matter as values and a body per language, every save a
revision, translation state against the source language, approvals, and the send.

    issues        create (from a form's values or content files), save a version, show, export
    translation   which languages are stale, and what changed in the source (difflib)
    sends         prepare (content files + `sending.launch.prepare_send`), approve, send, test-send
    catchup       a translation that landed after the send, to the readers who got a fallback
    preview       each reader language from the wire message (a send, or a version being typed)
    reports       a send's progress and report, from the ledger
    background    sends that run behind a page, in a thread, through `sending.launch`
    forms         the front matter as form fields and back (pure)
    files         a version as a content file and back (pure)
    versions      the typed values

The faces (workspace, CLI) call `issues`, `preview`, `sends`, `reports`, `background` and `catchup`;
SQL is in `store.editorial`.
"""
