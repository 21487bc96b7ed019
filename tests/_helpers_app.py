"""Start the real web app (``python app.py``) in a subprocess for app, browser, security and
benchmark runs, and speak to it the ways clients do.

The app gets its own data dir, corpus dir, Gradio temp dir, free port and users file; its log
goes to ``app.log`` next to the data dir so a failing test can show why. ``client`` unlocks the
app's hidden endpoints in a ``gradio_client.Client`` the way any attacker's client could (the
hidden flag is only honoured by the client library), so tests prove the server refuses;
``queue_call`` speaks Gradio's raw queue protocol (join, then the event stream) with any payload.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from _helpers_servers import free_port

REPO = Path(__file__).resolve().parent.parent
STAFF = ("sam", "staff-password-1")
VIEWER = ("vera", "viewer-password-1")
BOARD = ("bea", "board-password-1")  # a viewer in the group "board"
STARTUP_TIMEOUT_S = 240


def write_users(path: Path) -> Path:
    from webapp.auth import hash_password

    users = [
        {"name": STAFF[0], "role": "staff", "hash": hash_password(STAFF[1])},
        {"name": VIEWER[0], "role": "viewer", "hash": hash_password(VIEWER[1])},
        {"name": BOARD[0], "role": "viewer", "hash": hash_password(BOARD[1]), "groups": ["board"]},
    ]
    path.write_text(json.dumps({"users": users}), encoding="utf-8")
    return path


@dataclass
class RunningApp:
    url: str
    data_dir: Path
    corpus_dir: Path
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=10).json()

    @property
    def gradio_tmp(self) -> Path:
        """Gradio's upload and cache folder of this app (``GRADIO_TEMP_DIR``)."""
        return self.data_dir.parent / "gradio-tmp"


def app_env(**settings: str) -> dict[str, str]:
    """The environment of the app process: ours minus any ASSISTANT_*/OPENAI_* of the developer."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ASSISTANT_") and k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")
    }
    env.update(
        {
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "ANONYMIZED_TELEMETRY": "False",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(settings)
    return env


@contextlib.contextmanager
def running_app(
    root: Path,
    *,
    corpus: Path | None = REPO / "corpus",
    extra_env: dict[str, str] | None = None,
    wait_for_ingest: bool = True,
) -> Iterator[RunningApp]:
    """``python app.py`` on a free port with a copy of ``corpus`` (None: an empty corpus); ready
    once ``/healthz`` answers and (unless told not to wait) the start-up ingest has finished."""
    root.mkdir(parents=True, exist_ok=True)
    data_dir, corpus_dir = root / "data", root / "corpus"
    corpus_dir.mkdir(exist_ok=True)
    if corpus is not None:
        shutil.copytree(corpus, corpus_dir, dirs_exist_ok=True)
    port = free_port()
    defaults = {
        "ASSISTANT_DATA_DIR": str(data_dir),
        "ASSISTANT_CORPUS_DIR": str(corpus_dir),
        "ASSISTANT_PORT": str(port),
        "ASSISTANT_HOST": "127.0.0.1",
        "ASSISTANT_USERS_FILE": str(write_users(root / "users.json")),
        "GRADIO_TEMP_DIR": str(root / "gradio-tmp"),
    }
    env = app_env(**{**defaults, **(extra_env or {})})
    log_path = root / "app.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    app = RunningApp(f"http://127.0.0.1:{port}", data_dir, corpus_dir, log_path, process)
    try:
        wait_until_healthy(app, wait_for_ingest=wait_for_ingest)
        yield app
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_until_healthy(
    app: RunningApp, timeout: float = STARTUP_TIMEOUT_S, *, wait_for_ingest: bool = False
) -> float:
    """Seconds until ``/healthz`` answers ok (and, if asked, the start-up ingest is over); fails
    with the app's log if it dies or times out."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if app.process.poll() is not None:
            raise RuntimeError(f"the app exited with {app.process.returncode}:\n{app.log()}")
        try:
            health = httpx.get(f"{app.url}/healthz", timeout=2).json()
            if health.get("ok") and not (wait_for_ingest and health["ingest"]["state"] == "running"):
                return time.perf_counter() - started
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the app did not become healthy in {timeout:.0f}s:\n{app.log()}")


def client(url: str, auth: tuple[str, str] | None = None):
    """A ``gradio_client.Client`` whose hidden (private) endpoints can be called by name."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from gradio_client import Client

    c = Client(url + "/", auth=auth, verbose=False, download_files=False)
    for endpoint in c.endpoints.values():
        endpoint.is_valid = True  # what the library would refuse, a raw HTTP caller can still send
    return c


def fn_index(c, api_name: str) -> int:
    for dep in c.config["dependencies"]:
        if dep.get("api_name") == api_name:
            return dep["id"]
    raise KeyError(api_name)


def call(c, api_name: str, *args):
    """Call any endpoint, hidden or not, by its api_name."""
    return c.predict(*args, fn_index=fn_index(c, api_name))


def chat(c, question: str) -> list[dict]:
    """Ask through the public chat endpoint; returns the chatbot messages (the conversation so
    far: a follow-up in the same client's session sees the earlier questions)."""
    messages, _textbox, _status, _conversations, _title = c.predict(question, api_name="/chat")
    return messages


def signed_in(url: str, auth: tuple[str, str] | None) -> httpx.Client:
    """An HTTP client carrying the session cookie of ``auth`` (None: anonymous)."""
    http = httpx.Client(base_url=url, timeout=60)
    if auth is not None:
        r = http.post("/login", data={"username": auth[0], "password": auth[1]})
        assert r.status_code == 200, r.text
    return http


def queue_call(
    http: httpx.Client,
    fn_index: int,
    data: list,
    *,
    session_hash: str | None = None,
    event_data: object = None,
    timeout: float = 60,
) -> str:
    """Gradio's raw queue protocol: join with any payload, then read the event stream until the
    event completes. Returns everything the server sent (JSON messages, one per line)."""
    session_hash = session_hash or uuid.uuid4().hex[:11]
    body = {
        "data": data,
        "fn_index": fn_index,
        "session_hash": session_hash,
        "event_data": event_data,
        "trigger_id": None,
    }
    joined = http.post("/gradio_api/queue/join", json=body, timeout=timeout)
    if joined.status_code != 200:
        return f"join refused {joined.status_code}: {joined.text}"
    event_id = joined.json().get("event_id")
    lines = [joined.text]
    with http.stream(
        "GET", "/gradio_api/queue/data", params={"session_hash": session_hash}, timeout=timeout
    ) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            lines.append(line)
            message = json.loads(line[5:])
            done = message.get("msg") in ("process_completed", "close_stream", "unexpected_error")
            if done and message.get("event_id") in (event_id, None):
                break
    return "\n".join(lines)


def queue_output(stream: str) -> list:
    """The output values of the completed event in ``queue_call``'s text; fails with the text
    when the event did not succeed."""
    for line in reversed(stream.splitlines()):
        if line.startswith("data:"):
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed" and message.get("success"):
                return message["output"]["data"]
    raise AssertionError(f"the event did not complete:\n{stream[-2000:]}")


def message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))
