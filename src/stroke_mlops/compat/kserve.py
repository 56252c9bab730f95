"""KServe internals the model server relies on (kserve 0.20).

``ModelServer.start()`` builds its REST server (``ModelServer._rest_server``, a
``kserve.protocol.rest.server.RESTServer``) and then calls ``setup_event_loop()`` before
serving. At that point the server's ``uvicorn.Config`` is not loaded yet, and
``RESTServer.create_application()`` (run when the server starts) has yet to add KServe's
routes, middleware and exception handlers to the module-level FastAPI app
``kserve.model_server.app``. :func:`configure_rest_server` uses that moment: it edits the uvicorn
config, and runs a function on the app right after KServe's own set-up, so our handlers replace
KServe's instead of being replaced by them. Only the single-process REST server
(``workers == 1``) has these hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stroke_mlops.compat import require_tested

TESTED = ("0.20",)
VERSION = require_tested("kserve", TESTED, __name__)


def kserve_app() -> Any:
    """The FastAPI app every ``kserve.ModelServer`` in this process serves."""
    from kserve.model_server import app

    return app


def configure_rest_server(
    server: Any,
    *,
    configure_uvicorn: Callable[[Any], None],
    after_kserve_setup: Callable[[Any], None],
) -> None:
    """Call from ``ModelServer.setup_event_loop()``: ``configure_uvicorn(config)`` now, and
    ``after_kserve_setup(app)`` once KServe has registered its routes and handlers."""
    rest_server = server._rest_server
    if rest_server is None:
        raise RuntimeError("the KServe REST server is not built (more than one worker?)")
    configure_uvicorn(rest_server.config)
    create_application = rest_server.create_application

    def create_application_then_ours() -> None:
        create_application()
        after_kserve_setup(kserve_app())

    rest_server.create_application = create_application_then_ours
