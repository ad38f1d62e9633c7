"""End-to-end test of the nginx gateway (deploy/nginx) over two replicas.

Run by gateway_test.sh from the workspace root with the generated stubs on
PYTHONPATH. Everything listens on 127.0.0.1 on ports the OS picks, and every
child (nginx and the replicas) is stopped when the test ends.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
from concurrent import futures

import slabserve

sys.path.insert(0, "deploy/nginx")
import render  # noqa: E402

TMP = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp()
FAIL_TIMEOUT_S = 2  # nginx leaves a failed replica out this long
GRACE_S = 30  # the replicas' drain grace: far longer than any stream here
OK_SERIES = 'slabserve_requests_total{status="ok"}'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def refuses_connections(port):
    """True once nothing listens on the port (a held-off handshake: False)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        pass
    return False


def read_int(path):
    with open(path) as f:
        return int(f.read())


class Replica:
    """One slabserve child; restartable on the same gRPC port."""

    def __init__(self, name, port=0):
        self.name = name
        self.port = port
        self.proc = None
        self.start()

    def start(self):
        dir_ = os.path.join(TMP, self.name)
        os.makedirs(dir_, exist_ok=True)
        port_file = os.path.join(dir_, "port")
        metrics_file = os.path.join(dir_, "metrics_port")
        for f in (port_file, metrics_file):
            if os.path.exists(f):
                os.remove(f)
        with open(os.path.join(dir_, "log"), "ab") as log:
            self.proc = subprocess.Popen(
                ["server/slabserve", "--model=tests/golden/griffin_tiny",
                 "--tokenizer=tests/golden/tokenizer/tokenizer.model",
                 "--listen=127.0.0.1:%d" % self.port,
                 "--metrics_listen=127.0.0.1:0", "--port_file=" + port_file,
                 "--metrics_port_file=" + metrics_file, "--threads=1",
                 "--drain_grace_seconds=%d" % GRACE_S],
                stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(port_file) or self.proc.poll()
                 is not None, 60, self.name + " to listen")
        if self.proc.poll() is not None:
            raise AssertionError(self.name + " exited at start")
        self.port = read_int(port_file)
        self.metrics_port = read_int(metrics_file)

    def address(self):
        return "127.0.0.1:%d" % self.port

    def metrics(self):
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                values[series] = float(value)
        return values

    def ok_count(self):
        return self.metrics().get(OK_SERIES, 0)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Gateway:
    """nginx in the foreground with its config and files under TMP."""

    def __init__(self, replicas):
        self.runtime = os.path.join(TMP, "nginx")
        os.makedirs(self.runtime, exist_ok=True)
        self.port = free_port()
        conf = render.render(
            "127.0.0.1:%d" % self.port, [r.address() for r in replicas],
            self.runtime, user="root" if os.geteuid() == 0 else None,
            workers=1, fail_timeout=FAIL_TIMEOUT_S)
        conf_path = os.path.join(self.runtime, "nginx.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(
            ["/usr/sbin/nginx", "-e", os.path.join(self.runtime, "error.log"),
             "-g", "daemon off;", "-c", conf_path])

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited: " + self.error_log())
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        try:
            wait_for(listening, 20, "nginx to listen")
        except AssertionError:
            self.stop()
            raise

    def error_log(self):
        with open(os.path.join(self.runtime, "error.log")) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def generate(client, max_tokens):
    """One stream to its end: (gRPC status code name, tokens received)."""
    tokens = 0
    try:
        for chunk in client.generate(ids=[2, 3, 4, 5], max_tokens=max_tokens,
                                     ignore_eos=True, timeout=120):
            tokens += len(chunk.token_ids)
        return "OK", tokens
    except slabserve.SlabserveError as e:
        print("stream failed after", tokens, "tokens:", e, flush=True)
        return e.code, tokens


class Load:
    """`count` streams, `concurrency` at a time, in the background."""

    def __init__(self, client, count, concurrency, max_tokens):
        self.results = []
        self.started = 0
        self.lock = threading.Lock()
        self.pool = futures.ThreadPoolExecutor(concurrency)
        self.futures = [self.pool.submit(self._one, client, max_tokens)
                        for _ in range(count)]

    def _one(self, client, max_tokens):
        with self.lock:
            self.started += 1
        result = generate(client, max_tokens)
        with self.lock:
            self.results.append(result)
        return result

    def wait(self):
        for f in self.futures:
            f.result(timeout=300)
        self.pool.shutdown()
        return self.results


class GatewayTest(unittest.TestCase):

    def setUp(self):
        # Cleanups run even when a later step of setUp fails.
        self.replicas = []
        for name in ("a", "b"):
            self.replicas.append(Replica(name))
            self.addCleanup(self.replicas[-1].stop)
        self.gateway = Gateway(self.replicas)
        self.addCleanup(self.gateway.stop)
        # The Python client, as users would: it reports a stream the gateway
        # resets because its replica vanished as UNAVAILABLE.
        self.client = slabserve.Client("127.0.0.1:%d" % self.gateway.port)
        self.addCleanup(self.client.close)

    def failures(self, results):
        return [(code, n) for code, n in results if code != "OK"]

    def test_spreads_500_streams_over_both_replicas(self):
        before = [r.ok_count() for r in self.replicas]
        results = Load(self.client, 500, 16, 4).wait()
        self.assertEqual(self.failures(results), [])
        self.assertTrue(all(n == 4 for _, n in results))
        served = [r.ok_count() - b for r, b in zip(self.replicas, before)]
        print("served per replica:", served)
        self.assertEqual(sum(served), 500)
        for n in served:
            self.assertGreaterEqual(n, 0.3 * 500, served)

    def test_slabload_reports_per_replica_balance(self):
        out = os.path.join(TMP, "slabload.json")
        run = subprocess.run(
            ["loadtest/slabload",
             "--target=127.0.0.1:%d" % self.gateway.port,
             "--replica-metrics=" + ",".join(
                 "127.0.0.1:%d" % r.metrics_port for r in self.replicas),
             "--requests=100", "--concurrency=8", "--prompt-len=4",
             "--output-len=4", "--json=" + out],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("replicas (requests served: before -> after)",
                      run.stdout)
        with open(out) as f:
            replicas = json.load(f)["points"][0]["replicas"]
        self.assertEqual(len(replicas), 2)
        self.assertEqual(sum(r["served"] for r in replicas), 100)
        for r in replicas:
            self.assertNotIn("error", r)
            self.assertEqual(r["served"],
                             r["served_after"] - r["served_before"])
            self.assertGreaterEqual(r["share"], 0.3, replicas)

    def test_sigterm_drains_one_replica_without_failures(self):
        a, b = self.replicas
        load = Load(self.client, 200, 16, 48)
        seen = []  # streams running on a, as last seen before the signal

        def a_busy():
            seen.append(a.metrics().get("slabserve_running", 0))
            return seen[-1] > 0

        wait_for(a_busy, 30, "streams running on replica a")
        a_running = seen[-1]
        b_before = b.ok_count()
        a.proc.send_signal(signal.SIGTERM)
        # Streams started once a's port is closed cannot reach it (those on
        # their way at the signal may still be served by a).
        wait_for(lambda: refuses_connections(a.port), 10,
                 "replica a to close its port")
        started_at_close = load.started
        results = load.wait()
        self.assertEqual(a.proc.wait(timeout=GRACE_S + 10), 0)
        self.assertEqual(self.failures(results), [])
        self.assertTrue(all(n == 48 for _, n in results))
        # Whatever started after a closed its port went to the other replica.
        b_served = b.ok_count() - b_before
        print("a running at SIGTERM:", a_running, "b served after:", b_served)
        self.assertGreater(a_running, 0)
        self.assertGreaterEqual(b_served, 200 - started_at_close)

    def test_sigkill_fails_only_that_replicas_streams(self):
        a, b = self.replicas
        # Long streams, so that the kill finds b's streams (which start in
        # step, batched) past their first token rather than before it.
        load = Load(self.client, 100, 16, 400)

        def b_streaming():  # streams on b that have sent tokens
            m = b.metrics()
            return (m.get("slabserve_running", 0) > 0 and
                    m.get("slabserve_generated_tokens_total", 0) >= 16)

        wait_for(b_streaming, 30, "streams sending tokens on replica b")
        b.proc.kill()
        b.proc.wait()
        results = load.wait()
        failed = self.failures(results)
        print("failed after SIGKILL:", failed)
        # At most the streams in flight at the kill (16 run at a time), all
        # UNAVAILABLE. One that had no reply yet gets nginx's 502 page
        # (grpc-status 14); one cut mid-stream gets nginx's RST_STREAM
        # (INTERNAL_ERROR: nginx cannot send trailers for a stream whose
        # upstream vanished), which gRPC reads as INTERNAL and the client
        # reports as UNAVAILABLE.
        self.assertGreater(len(failed), 0)
        self.assertLessEqual(len(failed), 16)
        self.assertTrue(any(tokens > 0 for _, tokens in failed), failed)
        for code, _ in failed:
            self.assertEqual(code, "UNAVAILABLE", failed)
        # The gateway keeps serving, from the survivor.
        after = Load(self.client, 20, 4, 4).wait()
        self.assertEqual(self.failures(after), [])

    def test_no_replica_left_is_a_clean_unavailable(self):
        for r in self.replicas:
            r.stop()
        with self.assertRaises(slabserve.SlabserveError) as raised:
            list(self.client.generate(ids=[2, 3], max_tokens=2, timeout=30))
        self.assertEqual(raised.exception.code, "UNAVAILABLE")
        self.assertIn("no slabserve replica", raised.exception.details)


if __name__ == "__main__":
    unittest.main(verbosity=2)
