"""OpenAI fine-tuning adapter against a fake of the HTTP API, through the official ``openai`` client.

The fake (``FakeOpenAI``, also used by tests/cli/test_finetune.py) is a real HTTP server on
127.0.0.1 implementing POST /v1/files (multipart), POST /v1/fine_tuning/jobs,
GET /v1/fine_tuning/jobs/{id} (validating_files -> queued -> running -> succeeded or failed, one
step per retrieve) and POST /v1/fine_tuning/jobs/{id}/cancel.
"""

from __future__ import annotations

import json
import threading
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("openai")

from inward.errors import InwardError  # noqa: E402
from inward.train import openai_finetune as oft  # noqa: E402

API_KEY = "sk-test-never-written-anywhere"
PROGRESS = ["validating_files", "queued", "running"]


class FakeOpenAI:
    """A tiny fake of OpenAI's files and fine-tuning endpoints. ``fail_with`` makes jobs fail."""

    def __init__(self, fail_with: dict | None = None):
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.created: list[dict] = []
        self.fail_with = fail_with
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_POST(self):
                fake.requests.append(("POST", self.path))
                assert self.headers["Authorization"] == f"Bearer {API_KEY}"
                body = self._body()
                if self.path == "/v1/files":
                    msg = BytesParser().parsebytes(
                        f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
                    )
                    parts = {p.get_param("name", header="content-disposition"): p for p in msg.get_payload()}
                    assert parts["purpose"].get_payload(decode=True) == b"fine-tune"
                    fid = f"file-{len(fake.files) + 1}"
                    fake.files[fid] = parts["file"].get_payload(decode=True)
                    return self._send(
                        200,
                        {
                            "id": fid,
                            "object": "file",
                            "bytes": len(fake.files[fid]),
                            "created_at": 0,
                            "filename": parts["file"].get_filename(),
                            "purpose": "fine-tune",
                            "status": "processed",
                        },
                    )
                if self.path == "/v1/fine_tuning/jobs":
                    req = json.loads(body)
                    fake.created.append(req)
                    if req["training_file"] not in fake.files:
                        return self._send(
                            400, {"error": {"message": "invalid training_file", "type": "invalid_request_error"}}
                        )
                    jid = f"ftjob-{len(fake.jobs) + 1}"
                    fake.jobs[jid] = {"req": req, "step": 0, "status": "validating_files"}
                    return self._send(200, fake.job(jid))
                if self.path.startswith("/v1/fine_tuning/jobs/") and self.path.endswith("/cancel"):
                    jid = self.path.split("/")[4]
                    fake.jobs[jid]["status"] = "cancelled"
                    return self._send(200, fake.job(jid))
                self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_GET(self):
                fake.requests.append(("GET", self.path))
                jid = self.path.rsplit("/", 1)[-1]
                if not self.path.startswith("/v1/fine_tuning/jobs/") or jid not in fake.jobs:
                    return self._send(404, {"error": {"message": f"no job {jid}"}})
                job = fake.jobs[jid]
                if job["status"] not in oft.TERMINAL:
                    job["step"] += 1
                    if job["step"] < len(PROGRESS):
                        job["status"] = PROGRESS[job["step"]]
                    else:
                        job["status"] = "failed" if fake.fail_with else "succeeded"
                self._send(200, fake.job(jid))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def job(self, jid: str) -> dict:
        j, req = self.jobs[jid], self.jobs[jid]["req"]
        done = j["status"] == "succeeded"
        return {
            "id": jid,
            "object": "fine_tuning.job",
            "created_at": 0,
            "model": req["model"],
            "organization_id": "org-test",
            "status": j["status"],
            "training_file": req["training_file"],
            "validation_file": req.get("validation_file"),
            "seed": req.get("seed", 0),
            "result_files": [],
            "hyperparameters": req["method"]["supervised"]["hyperparameters"],
            "method": req["method"],
            "fine_tuned_model": f"ft:{req['model']}:org-test:{req.get('suffix', '')}:{jid[-1]}abc" if done else None,
            "finished_at": 1 if j["status"] in oft.TERMINAL else None,
            "trained_tokens": 100 if done else None,
            "error": self.fail_with if j["status"] == "failed" else None,
        }

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p == path)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_examples(path, n=12, start=0, extra=None):
    rows = []
    for i in range(start, start + n):
        row = {
            "messages": [
                {"role": "system", "content": ""},
                {"role": "user", "content": f"Previously, you were asked about string {i}. First character?"},
                {"role": "assistant", "content": chr(97 + i % 26)},
            ],
            "string": f"s{i}",
        }
        rows.append(row)
    if extra:
        rows.extend(extra)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def client_for(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)

    def make(fake: FakeOpenAI):
        return oft.make_client(base_url=fake.url)

    return make


CONFIG = oft.OpenAIFinetuneConfig(model="gpt-4o-mini-2024-07-18", suffix="self-pred", seed=0)
NO_SLEEP = lambda s: None  # noqa: E731


# ---- validation ----------------------------------------------------------------------------


def _msgs(*pairs):
    return {"messages": [{"role": r, "content": c} for r, c in pairs]}


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("not json", "line 13 is not valid JSON"),
        (json.dumps({"prompt": "x"}), 'line 13: expected {"messages"'),
        (json.dumps(_msgs(("user", "q"), ("bot", "a"))), "line 13: message 1 has role 'bot'"),
        (json.dumps(_msgs(("user", "q"), ("assistant", "a"), ("user", "again"))), "line 13: the last message must be"),
        (json.dumps(_msgs(("user", "q"), ("assistant", ""))), "line 13: message 1 (assistant) has empty content"),
        (json.dumps(_msgs(("system", "s"), ("assistant", "a"))), "line 13: no user message"),
        (
            json.dumps(
                {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]}
            ),
            "line 13: message 1 has weight 2",
        ),
        (
            json.dumps(
                {"messages": [{"role": "user", "content": "q", "weight": 1}, {"role": "assistant", "content": "a"}]}
            ),
            'message 0 (user) has a "weight"',
        ),
    ],
)
def test_validation_names_file_and_line(tmp_path, bad_line, message):
    path = write_examples(tmp_path / "train.jsonl")
    path.write_text(path.read_text() + bad_line + "\n")
    with pytest.raises(InwardError) as err:
        oft.validate_jsonl(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_validation_accepts_weights_and_empty_system_and_counts_examples(tmp_path):
    ok = {
        "messages": [
            {"role": "system", "content": ""},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "x", "weight": 0},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "y", "weight": 1},
        ]
    }
    rows = oft.validate_jsonl(write_examples(tmp_path / "t.jsonl", n=9, extra=[ok]))
    assert len(rows) == 10
    assert json.loads(oft.upload_bytes(rows).decode().splitlines()[0]) == {"messages": rows[0]["messages"]}
    with pytest.raises(InwardError, match="has 9 example.*at least 10"):
        oft.validate_jsonl(write_examples(tmp_path / "few.jsonl", n=9))
    with pytest.raises(InwardError, match="does not exist"):
        oft.validate_jsonl(tmp_path / "missing.jsonl")


def test_validation_file_must_not_overlap_training(tmp_path, client_for):
    train = write_examples(tmp_path / "train.jsonl", n=12)
    val = write_examples(tmp_path / "val.jsonl", n=3, start=11)  # its first line is train line 12
    with FakeOpenAI() as fake:
        with pytest.raises(InwardError, match=r"val.jsonl: line 1 is the same example as .*train.jsonl: line 12"):
            oft.run(client_for(fake), train, tmp_path / "out", CONFIG, validation_path=val, sleep=NO_SLEEP)
        assert fake.requests == []  # nothing uploaded


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_epochs": 0}, "n_epochs=0"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
        ({"learning_rate_multiplier": "fast"}, "learning_rate_multiplier='fast'"),
        ({"suffix": "x" * 65}, "at most 64"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(InwardError, match=message):
        oft.OpenAIFinetuneConfig(model="gpt-4o-mini", **kwargs)


# ---- the job lifecycle -----------------------------------------------------------------------


def test_upload_and_create_once_then_poll_to_the_model_string(tmp_path, client_for):
    train = write_examples(tmp_path / "train.jsonl")
    val = write_examples(tmp_path / "val.jsonl", n=2, start=50)
    seen = []
    with FakeOpenAI() as fake:
        state = oft.run(
            client_for(fake),
            train,
            tmp_path / "out",
            CONFIG,
            validation_path=val,
            poll_seconds=0,
            sleep=NO_SLEEP,
            on_status=lambda s: seen.append(s.status),
        )
        assert fake.count("POST", "/v1/files") == 2 and fake.count("POST", "/v1/fine_tuning/jobs") == 1
        req = fake.created[0]
        uploaded = [json.loads(x) for x in fake.files[req["training_file"]].decode().splitlines()]
    assert req["model"] == CONFIG.model and req["suffix"] == "self-pred" and req["seed"] == 0
    assert req["validation_file"] == "file-2"
    assert req["method"] == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": "auto", "learning_rate_multiplier": 2.0}},
    }  # the paper's settings
    assert len(uploaded) == 12 and all(set(u) == {"messages"} for u in uploaded)  # "string" dropped
    assert seen == ["validating_files", "queued", "running", "succeeded"]
    assert state.model_string == "openai/ft:gpt-4o-mini-2024-07-18:org-test:self-pred:1abc"
    saved = (tmp_path / "out" / oft.STATE_FILE).read_text()
    assert API_KEY not in saved and json.loads(saved)["model_string"] == state.model_string
    assert [h["status"] for h in json.loads(saved)["history"]] == ["uploaded", *seen]


def test_restart_resumes_polling_the_same_job(tmp_path, client_for):
    train = write_examples(tmp_path / "train.jsonl")
    out = tmp_path / "out"

    def interrupted(_):
        raise KeyboardInterrupt  # the process dies during its first pause between polls

    with FakeOpenAI() as fake:
        with pytest.raises(KeyboardInterrupt):
            oft.run(client_for(fake), train, out, CONFIG, poll_seconds=0, sleep=interrupted)
        first = oft.load_state(out)
        assert first.job_id == "ftjob-1" and first.status == "queued"
        state = oft.run(client_for(fake), train, out, CONFIG, poll_seconds=0, sleep=NO_SLEEP)
        assert fake.count("POST", "/v1/files") == 1 and fake.count("POST", "/v1/fine_tuning/jobs") == 1
        assert fake.count("GET", "/v1/fine_tuning/jobs/ftjob-1") == 3
        # Done is done: a third run answers from the state file without calling the API.
        before = len(fake.requests)
        again = oft.run(client_for(fake), train, out, CONFIG, poll_seconds=0, sleep=NO_SLEEP)
        assert len(fake.requests) == before
    assert state.status == "succeeded" and again.model_string == state.model_string


def test_upload_is_not_repeated_when_job_creation_failed(tmp_path, client_for, monkeypatch):
    train = write_examples(tmp_path / "train.jsonl")
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        client = client_for(fake)
        real_create = client.fine_tuning.jobs.create
        monkeypatch.setattr(
            client.fine_tuning.jobs, "create", lambda **kw: real_create(**{**kw, "training_file": "file-x"})
        )
        with pytest.raises(InwardError, match=r"creating the fine-tuning job \(HTTP 400\).*invalid training_file"):
            oft.run(client, train, out, CONFIG, poll_seconds=0, sleep=NO_SLEEP)
        assert oft.load_state(out).training_file_id == "file-1"
        oft.run(client_for(fake), train, out, CONFIG, poll_seconds=0, sleep=NO_SLEEP)
        assert fake.count("POST", "/v1/files") == 1 and fake.count("POST", "/v1/fine_tuning/jobs") == 2


def test_same_out_dir_with_other_inputs_is_refused(tmp_path, client_for):
    train = write_examples(tmp_path / "train.jsonl")
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        oft.submit(client_for(fake), train, out, CONFIG)
        with pytest.raises(InwardError, match="different config"):
            oft.submit(client_for(fake), train, out, oft.OpenAIFinetuneConfig(model="gpt-4.1-mini"))
        write_examples(train, n=15)
        with pytest.raises(InwardError, match="different training file"):
            oft.submit(client_for(fake), train, out, CONFIG)
        with pytest.raises(InwardError, match="moved.jsonl' does not exist"):
            oft.submit(client_for(fake), tmp_path / "moved.jsonl", out, CONFIG)
        assert fake.count("POST", "/v1/files") == 1


def test_cancel(tmp_path, client_for):
    train = write_examples(tmp_path / "train.jsonl")
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        with pytest.raises(InwardError, match="nothing to cancel"):
            oft.cancel(client_for(fake), out)
        oft.submit(client_for(fake), train, out, CONFIG)
        state = oft.cancel(client_for(fake), out)
        assert fake.count("POST", "/v1/fine_tuning/jobs/ftjob-1/cancel") == 1
        assert state.status == "cancelled" and oft.load_state(out).status == "cancelled"
        with pytest.raises(InwardError, match="ftjob-1 was cancelled"):
            oft.run(client_for(fake), train, out, CONFIG, poll_seconds=0, sleep=NO_SLEEP)


def test_failed_job_is_a_clear_error(tmp_path, client_for):
    train = write_examples(tmp_path / "train.jsonl")
    error = {"code": "invalid_training_file", "message": "Line 3 is too long", "param": "training_file"}
    with FakeOpenAI(fail_with=error) as fake:
        with pytest.raises(InwardError) as err:
            oft.run(client_for(fake), train, tmp_path / "out", CONFIG, poll_seconds=0, sleep=NO_SLEEP)
    assert "ftjob-1 failed" in str(err.value) and "Line 3 is too long" in str(err.value)
    state = oft.load_state(tmp_path / "out")
    assert state.status == "failed" and state.model_string is None and "invalid_training_file" in state.error


def test_timeout_says_how_to_resume(tmp_path, client_for):
    train = write_examples(tmp_path / "train.jsonl")
    with FakeOpenAI() as fake:
        with pytest.raises(InwardError, match="Rerun the same command to resume"):
            oft.run(client_for(fake), train, tmp_path / "out", CONFIG, poll_seconds=0, timeout=0, sleep=NO_SLEEP)


def test_transient_errors_are_retried(tmp_path, client_for, monkeypatch):
    train = write_examples(tmp_path / "train.jsonl")
    out = tmp_path / "out"

    class APIConnectionError(Exception):
        pass

    with FakeOpenAI() as fake:
        client = client_for(fake)
        oft.submit(client, train, out, CONFIG)
        real, calls = client.fine_tuning.jobs.retrieve, []

        def flaky(jid):
            calls.append(jid)
            if len(calls) % 2:
                raise APIConnectionError("connection reset")
            return real(jid)

        monkeypatch.setattr(client.fine_tuning.jobs, "retrieve", flaky)
        pauses = []
        assert oft.wait(client, out, poll_seconds=1, sleep=pauses.append).status == "succeeded"
        assert pauses.count(2) == 3  # one backoff after each failure, between normal 1 s pauses
        with pytest.raises(InwardError, match="unreachable"):
            monkeypatch.setattr(
                client.fine_tuning.jobs, "retrieve", lambda jid: (_ for _ in ()).throw(APIConnectionError("down"))
            )
            oft.save_state(out, oft.FinetuneState(**{**oft.load_state(out).to_json(), "status": "running"}))
            oft.wait(client, out, poll_seconds=0, sleep=NO_SLEEP, max_transient_errors=2)


def test_missing_key_and_missing_openai_are_clear(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(InwardError, match="OPENAI_API_KEY is not set"):
        oft.make_client()
    monkeypatch.setitem(__import__("sys").modules, "openai", None)
    with pytest.raises(InwardError, match=r"pip install 'inward\[api\]'"):
        oft.make_client()
