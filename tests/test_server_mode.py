"""Server mode: the same ingestion and retrieval against a real ``chroma run`` server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.core import Assistant
from ingest.pipeline import ingest
from kb import ConfigError, KnowledgeBase
from tests._helpers_files import write_text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    """A real Chroma server on 127.0.0.1 with its own data folder; stopped after the test."""
    port = _free_port()
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    proc = subprocess.Popen(
        [exe, "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "RUST_LOG": "warn", "ANONYMIZED_TELEMETRY": "False"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"chroma run exited: {proc.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(timeout=20)


def test_ingest_and_reingest_against_a_chroma_server(make_settings, tmp_path, chroma_server):
    settings = make_settings(
        chroma_host="127.0.0.1",
        chroma_port=chroma_server,
        record_db_url=f"sqlite:///{tmp_path / 'shared-records.sqlite'}",
    )
    write_text(
        settings.corpus_dir / "alpha.txt", "Project Alpha installs solar water pumps in Kenyan clinics."
    )
    write_text(settings.corpus_dir / "beta.txt", "Project Beta trains nurses in telemedicine in Finland.")

    first = ingest(None, settings)
    assert first.totals["added"] == 2
    assert not (settings.data_dir / "chroma").exists(), "server mode keeps no embedded Chroma files"

    write_text(settings.corpus_dir / "beta.txt", "Project Beta trains midwives in telemedicine in Estonia.")
    (settings.corpus_dir / "alpha.txt").unlink()
    second = ingest(None, settings)
    assert {f.source: f.status for f in second.files} == {"beta.txt": "updated", "alpha.txt": "removed"}

    kb = KnowledgeBase(settings)
    assert kb.count_chunks() == 1
    answer = Assistant(settings, kb).ask("Who does Project Beta train?")
    assert answer.passages and answer.passages[0].source == "beta.txt"
    assert "midwives" in answer.passages[0].text

    again = ingest(None, settings)
    assert [f.status for f in again.files] == ["unchanged"]


def test_unreachable_chroma_server_is_a_one_line_config_error(make_settings):
    settings = make_settings(chroma_host="127.0.0.1", chroma_port=_free_port())
    with pytest.raises(ConfigError, match="ASSISTANT_CHROMA_HOST") as err:
        KnowledgeBase(settings)
    assert "\n" not in str(err.value)
