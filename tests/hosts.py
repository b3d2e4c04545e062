"""Stand-ins for the weight hosts: a local HTTP server on 127.0.0.1, a prepared Hugging Face cache,
and a way to list them as a zoo entry's published sources for the length of one test."""

from __future__ import annotations

import dataclasses
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from splitattn.models import get_model_entry
from splitattn.models.published import PublishedWeights, WeightSource
from splitattn.models.registry import _REGISTRY


class Route:
    """What the server answers on one path: a file's bytes, an HTTP error, or silence (a timeout)."""

    def __init__(self, body: bytes = b"", status: int = 200, delay: float = 0.0) -> None:
        self.body, self.status, self.delay = body, status, delay


class LocalHost:
    """An HTTP server on 127.0.0.1 (a free port) answering each path as ``routes`` says; ``hits`` counts requests."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.hits: dict[str, int] = {}
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.hits[self.path] = host.hits.get(self.path, 0) + 1
                route = host.routes.get(self.path, Route(status=404))
                if route.delay:
                    time.sleep(route.delay)
                if route.status != 200:
                    self.send_error(route.status)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self) -> LocalHost:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def publish(monkeypatch, name: str, *sources: WeightSource, tag: str = "test_in1k", top1: float = 70.0) -> None:
    """Make ``sources`` the published weights of ``name`` (its only tag) for this test."""
    entry = get_model_entry(name)
    weights = PublishedWeights(tag=tag, sources=tuple(sources), top1=top1, top1_by="this test", license="apache-2.0",
                               trained_by="this test")
    monkeypatch.setitem(_REGISTRY, name, dataclasses.replace(entry, weights=(weights,)))


@contextmanager
def hub_cache(monkeypatch, cache: Path) -> Iterator[Path]:
    """huggingface_hub pointed at ``cache`` in offline mode (``HF_HUB_OFFLINE=1``) for this test."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    yield cache


def put_in_hub_cache(cache: Path, repo_id: str, folder: Path, revision: str = "main") -> None:
    """Lay ``folder``'s files out as huggingface_hub caches a download of ``repo_id``."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        shutil.copyfile(path, snapshot / path.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
