"""Progressive loading from the command line: `brink run tcp://HOST:PORT` against a real TCP
server that sends a real package slowly, `brink run PKG --stream` from a file, a byte flipped
in a late chunk mid-stream (refused, naming the chunk), and the format-1 layout (manifest
after the chunks) still read, streamed and patched byte for byte.
(tests/unit/stream_loader_test.cc covers the loader itself.)"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

from conftest import MODELS_DIR, Brink

DIGITS = os.path.join(MODELS_DIR, "digits_cnn.onnx")
GENERATED = os.path.join(os.path.dirname(__file__), ".generated", "v1")


class SlowServer:
    """Serves `data` to one TCP client in `pieces` writes, sleeping `delay` s after each."""

    def __init__(self, data: bytes, pieces: int = 40, delay: float = 0.03, close: bool = True):
        self.data, self.pieces, self.delay, self.close = data, pieces, delay, close
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.url = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.sent_all_at: float | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.sock.settimeout(60)
            conn, _ = self.sock.accept()
            with conn:
                step = -(-len(self.data) // self.pieces)
                for at in range(0, len(self.data), step):
                    conn.sendall(self.data[at:at + step])
                    time.sleep(self.delay)
                self.sent_all_at = time.monotonic()
                if self.close:
                    conn.shutdown(socket.SHUT_WR)
                conn.settimeout(60)
                while conn.recv(4096):  # until the client closes
                    pass
        except OSError as e:  # the client may close early after refusing the package
            self.error = e
        finally:
            self.sock.close()

    def join(self) -> None:
        self.thread.join(timeout=60)


def run_timed(args: list[str]) -> tuple[subprocess.CompletedProcess, list[tuple[float, str]]]:
    """Runs brink, recording when each stderr line arrives."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    lines: list[tuple[float, str]] = []

    def read_stderr() -> None:
        for line in proc.stderr:
            lines.append((time.monotonic(), line.rstrip("\n")))

    t = threading.Thread(target=read_stderr)
    t.start()
    out = proc.stdout.read()
    proc.wait(timeout=300)
    t.join()
    return subprocess.CompletedProcess(args, proc.returncode, out,
                                       "\n".join(l for _, l in lines)), lines


def outputs(d) -> dict[str, np.ndarray]:
    return {f: np.load(os.path.join(d, f)) for f in sorted(os.listdir(d))}


def pack(brink: Brink, onnx: str, out, *extra: str) -> None:
    proc = brink("pack", onnx, "-o", out, *extra)
    assert proc.returncode == 0, Brink.describe(proc)


@pytest.fixture(scope="module")
def keys(brink, tmp_path_factory):
    d = tmp_path_factory.mktemp("stream_keys")
    proc = brink("keygen", "-o", d / "dev")
    assert proc.returncode == 0, Brink.describe(proc)
    return d


@pytest.fixture(scope="module")
def digits(brink, keys, tmp_path_factory):
    """The digits CNN, signed, with 4 KiB chunks so that it has many."""
    out = tmp_path_factory.mktemp("stream") / "digits.brink"
    pack(brink, DIGITS, out, "--sign", keys / "dev.key", "--chunk-size", "4")
    return out


def file_outputs(brink: Brink, pkg, d) -> dict[str, np.ndarray]:
    proc = brink("run", pkg, "--random", "--seed", "3", "-o", d)
    assert proc.returncode == 0, Brink.describe(proc)
    return outputs(d)


def check_streamed_over_tcp(brink: Brink, pkg, keys, tmp_path, pieces: int, delay: float):
    want = file_outputs(brink, pkg, tmp_path / "file")
    server = SlowServer(pkg.read_bytes(), pieces=pieces, delay=delay)
    proc, lines = run_timed([brink.path, "run", server.url, "--progress", "--random", "--seed", "3",
                             "-o", str(tmp_path / "tcp"), "--pubkey", str(keys / "dev.pub")])
    server.join()
    assert proc.returncode == 0, Brink.describe(proc)
    got = outputs(tmp_path / "tcp")
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    progress = [(t, l) for t, l in lines if l.startswith("progress: ")]
    chunks = json.loads(brink("info", pkg, "--json").stdout)["chunks"]
    assert len(progress) == len(chunks) + 1, proc.stderr
    assert "header, manifest and signature verified" in progress[0][1]
    assert f"{len(chunks)} of {len(chunks)} chunks" in progress[-1][1]
    # Progress arrives while the stream is still being sent, not all at the end.
    assert server.sent_all_at is not None
    early = [l for t, l in progress if t < server.sent_all_at]
    assert len(early) >= 2, f"no progress before the end of the stream:\n{proc.stderr}"
    assert "first layer started at" in proc.stdout
    return proc


def test_streamed_over_tcp_runs_like_the_file(brink, keys, digits, tmp_path):
    check_streamed_over_tcp(brink, digits, keys, tmp_path, pieces=40, delay=0.03)


def test_streamed_mobilenet_over_tcp(brink, keys, tmp_path):
    onnx = os.path.join(GENERATED, "mobilenet_v2", "model.onnx")
    if not os.path.exists(onnx):
        pytest.skip("mobilenet_v2 not generated (tests/python/.generated)")
    pkg = tmp_path / "mobilenet_v2.brink"
    pack(brink, onnx, pkg, "--sign", keys / "dev.key", "--chunk-size", "1024")
    proc = check_streamed_over_tcp(brink, pkg, keys, tmp_path, pieces=30, delay=0.02)
    line = next(l for l in proc.stdout.splitlines() if l.startswith("stream: "))
    first = float(line.split("first layer started at ")[1].split(" ms")[0])
    verified = float(line.split("chunks verified at ")[1].split(" ms")[0])
    assert first < verified, line  # the first layers ran before the last chunk arrived


def test_a_server_may_keep_the_connection_open(brink, keys, digits, tmp_path):
    want = file_outputs(brink, digits, tmp_path / "file")
    server = SlowServer(digits.read_bytes(), pieces=5, delay=0.01, close=False)
    proc = brink("run", server.url, "--random", "--seed", "3", "-o", tmp_path / "tcp", "--pubkey",
                 keys / "dev.pub", timeout=20)
    server.join()
    assert proc.returncode == 0, Brink.describe(proc)
    got = outputs(tmp_path / "tcp")
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_stream_from_a_file(brink, digits, tmp_path):
    want = file_outputs(brink, digits, tmp_path / "file")
    proc = brink("run", digits, "--stream", "--progress", "--random", "--seed", "3", "-o",
                 tmp_path / "stream")
    assert proc.returncode == 0, Brink.describe(proc)
    got = outputs(tmp_path / "stream")
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert proc.stderr.count("progress: ") >= 3
    j = brink.json("run", digits, "--stream", "--random", "--json")
    assert j["stream"]["progressive"] is True
    assert 0 <= j["stream"]["first_layer_ms"] <= j["stream"]["result_ms"]


def test_a_flipped_byte_in_a_late_chunk_is_refused_mid_stream(brink, keys, digits):
    chunks = json.loads(brink("info", digits, "--json").stdout)["chunks"]
    last = len(chunks) - 1
    data = bytearray(digits.read_bytes())
    data[chunks[last]["offset"] + chunks[last]["size"] // 2] ^= 0x01
    server = SlowServer(bytes(data), pieces=20, delay=0.01)
    brink.expect_error("run", server.url, "--random", "--pubkey", keys / "dev.pub",
                       mentions=[f"chunk {last} (weights", "SHA-256"])
    server.join()


def test_refused_before_any_chunk_with_the_wrong_key(brink, digits, tmp_path):
    proc = brink("keygen", "-o", tmp_path / "other")
    assert proc.returncode == 0, Brink.describe(proc)
    server = SlowServer(digits.read_bytes(), pieces=20, delay=0.01)
    brink.expect_error("run", server.url, "--random", "--pubkey", tmp_path / "other.pub",
                       mentions=["not by the trusted key"])
    server.join()


def test_format_one_layout_still_reads(brink, keys, digits, tmp_path):
    old = tmp_path / "old.brink"
    pack(brink, DIGITS, old, "--sign", keys / "dev.key", "--chunk-size", "4", "--format", "1")
    info = brink.json("info", old, "--json")
    assert info["format"] == "1.0"
    assert info["chunks"][0]["offset"] == 64  # chunks first, manifest last
    assert brink.json("info", digits, "--json")["format"].startswith("2.")
    want = file_outputs(brink, digits, tmp_path / "new_out")
    for args in ([], ["--stream"]):
        d = tmp_path / ("old_out" + "".join(args))
        proc = brink("run", old, *args, "--random", "--seed", "3", "-o", d, "--pubkey",
                     keys / "dev.pub")
        assert proc.returncode == 0, Brink.describe(proc)
        got = outputs(d)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    # A delta from the old layout to the new one rebuilds the new package byte for byte.
    proc = brink("diff", old, digits, "-o", tmp_path / "u.delta")
    assert proc.returncode == 0, Brink.describe(proc)
    proc = brink("patch", old, tmp_path / "u.delta", "-o", tmp_path / "rebuilt.brink")
    assert proc.returncode == 0, Brink.describe(proc)
    assert (tmp_path / "rebuilt.brink").read_bytes() == digits.read_bytes()


# ---- brink-run, the device runner: the same streaming (package::load_streamed) ----------

def device_runner(brink: Brink) -> str:
    runner = os.path.join(os.path.dirname(brink.path), "brink-run")
    if not os.access(runner, os.X_OK):
        pytest.skip(f"{runner} not built")
    return runner


def test_device_runner_streams_over_tcp_and_from_a_file(brink, keys, digits, tmp_path):
    runner = device_runner(brink)
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(6).random((1, 1, 8, 8), dtype=np.float32))
    common = ["--input", f"image={x}", "--repeat", "2", "--pubkey", str(keys / "dev.pub")]
    ref = subprocess.run([runner, str(digits), *common, "--output-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert ref.returncode == 0, ref.stderr
    want = np.load(tmp_path / "logits.npy")

    server = SlowServer(digits.read_bytes(), pieces=20, delay=0.02)
    (tmp_path / "tcp").mkdir()
    proc, lines = run_timed([runner, server.url, "--progress", *common,
                             "--output-dir", str(tmp_path / "tcp")])
    server.join()
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "tcp" / "logits.npy"), want)
    progress = [(t, l) for t, l in lines if l.startswith("progress: ")]
    chunks = json.loads(brink("info", digits, "--json").stdout)["chunks"]
    assert len(progress) == len(chunks) + 1, proc.stderr
    assert server.sent_all_at is not None
    assert len([l for t, l in progress if t < server.sent_all_at]) >= 2, proc.stderr
    assert "first layer started at" in proc.stdout

    (tmp_path / "file").mkdir()
    proc = subprocess.run([runner, str(digits), "--stream", *common, "--output-dir",
                           str(tmp_path / "file")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "progress: " not in proc.stderr and "stream: " in proc.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "file" / "logits.npy"), want)


def test_device_runner_refuses_a_damaged_stream(brink, keys, digits, tmp_path):
    runner = device_runner(brink)
    chunks = json.loads(brink("info", digits, "--json").stdout)["chunks"]
    last = len(chunks) - 1
    data = bytearray(digits.read_bytes())
    data[chunks[last]["offset"] + chunks[last]["size"] // 2] ^= 0x01
    server = SlowServer(bytes(data), pieces=10, delay=0.01)
    proc = subprocess.run([runner, server.url, "--pubkey", str(keys / "dev.pub")],
                          capture_output=True, text=True, timeout=60)
    server.join()
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert f"chunk {last} (weights" in proc.stderr and "SHA-256" in proc.stderr
    bad = subprocess.run([runner, str(digits), "--progress"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--progress needs --stream" in bad.stderr
    bad = subprocess.run([runner, "tcp://127.0.0.1:1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "cannot connect" in bad.stderr, bad.stderr
