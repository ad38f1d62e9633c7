"""Soak benchmark: hours of mixed, misbehaving load against one slabserve.

Starts the server on free loopback ports, then for --minutes keeps
--workers streams in flight, each picking one behaviour at random:

  complete   read a stream to its end
  cancel     cancel after a random number of chunks
  deadline   a deadline shorter than the reply needs (DEADLINE_EXCEEDED)
  slow       sleep between chunks (a slow reader)
  stall      read one chunk, stop reading for seconds, then cancel
  long       a prompt of thousands of tokens (prefill), read to the end
  unary      Tokenize, Detokenize or GetModelInfo

Every --interval seconds it samples the server's slots in use, running and
waiting requests (from /metrics), resident memory, open file descriptors
and threads (from /proc), and the outcomes since the last sample. After the
load stops it waits for the slots to return to zero and ends the server with
SIGTERM. Writes the samples as JSON (--json) and prints a Markdown table.

Needs Debian's python3-grpcio and the generated stubs on the path
(scripts/install_python_client.sh). Not a test: it runs for as long as asked.
"""
import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import grpc

from slabserve.v1 import slabserve_pb2
from slabserve.v1 import slabserve_pb2_grpc

BEHAVIOURS = [  # (name, weight)
    ("complete", 35), ("cancel", 15), ("deadline", 15), ("slow", 10),
    ("stall", 5), ("long", 5), ("unary", 15)]
WORDS = ("the of and to in that was he for it with as his on be at by had "
         "not are but from or have an they which one you were her all she "
         "there would their we him been has when who will more no if out "
         "so said what up its about into than them can only other new some "
         "could time these two may then do first any my now such like our "
         "over man me even most made after also did many before must "
         "through back years where much your way well down should because "
         "each just those people how too little state good very make world "
         "still own see men work long get here between both life being under "
         "never day same another know while last might us great old year "
         "off come since against go came right used take three").split()


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True, help="slabserve binary")
    p.add_argument("--config", default="configs/default.textproto")
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--interval", type=float, default=60,
                   help="seconds between samples")
    p.add_argument("--workers", type=int, default=24)
    p.add_argument("--stall_seconds", type=float, default=5,
                   help="server's --stream_stall_seconds")
    p.add_argument("--server_args", default="",
                   help="extra server flags, space separated")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default="", help="write the samples here")
    return p.parse_args()


def read_metrics(port):
    url = "http://127.0.0.1:%d/metrics" % port
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            values[series] = float(value)
    return values


def proc_status(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return {"rss_mib": int(fields["VmRSS"][0]) / 1024.0,
            "threads": int(fields["Threads"][0]),
            "fds": len(os.listdir("/proc/%d/fd" % pid))}


class Server:
    def __init__(self, args, work):
        port_file = os.path.join(work, "port")
        metrics_file = os.path.join(work, "metrics_port")
        self.log_path = os.path.join(work, "server.log")
        cmd = [args.server, "--config=" + args.config,
               "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
               "--port_file=" + port_file,
               "--metrics_port_file=" + metrics_file,
               "--stream_stall_seconds=%g" % args.stall_seconds]
        cmd += args.server_args.split()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not (os.path.exists(metrics_file) and os.path.exists(port_file)
                   and os.path.getsize(port_file) > 0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("server did not start; see " + self.log_path)
            time.sleep(0.1)
        time.sleep(0.2)  # both files complete
        with open(port_file) as f:
            self.port = int(f.read())
        with open(metrics_file) as f:
            self.metrics_port = int(f.read())


class Load:
    """Worker threads running random behaviours; counts outcomes."""

    def __init__(self, stub, workers, seed):
        self.stub = stub
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes = collections.Counter()
        self.tokens = 0
        self.threads = [threading.Thread(target=self._run, args=(seed + i,))
                        for i in range(workers)]
        for t in self.threads:
            t.start()

    def take(self):
        with self.lock:
            outcomes, tokens = self.outcomes, self.tokens
            self.outcomes, self.tokens = collections.Counter(), 0
        return outcomes, tokens

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def _count(self, behaviour, outcome, tokens=0):
        with self.lock:
            self.outcomes["%s:%s" % (behaviour, outcome)] += 1
            self.tokens += tokens

    def _run(self, seed):
        rng = random.Random(seed)
        names = [n for n, _ in BEHAVIOURS]
        weights = [w for _, w in BEHAVIOURS]
        while not self.stop.is_set():
            behaviour = rng.choices(names, weights)[0]
            try:
                tokens = getattr(self, "_" + behaviour)(rng)
                self._count(behaviour, "ok", tokens)
            except grpc.RpcError as e:
                self._count(behaviour, e.code().name.lower())

    def _request(self, rng, words, max_tokens):
        text = " ".join(rng.choice(WORDS) for _ in range(words))
        return slabserve_pb2.GenerateRequest(
            text=text, max_tokens=max_tokens, ignore_eos=rng.random() < 0.5,
            sampling=slabserve_pb2.SamplingParams(
                temperature=rng.choice([0, 0.7, 1.0]), seed=rng.getrandbits(32)))

    def _read(self, call, per_chunk_sleep=0.0):
        tokens = 0
        for chunk in call:
            tokens += len(chunk.token_ids)
            if per_chunk_sleep:
                time.sleep(per_chunk_sleep)
        return tokens

    def _complete(self, rng):
        request = self._request(rng, rng.randint(4, 64), rng.randint(8, 128))
        return self._read(self.stub.Generate(request, timeout=300))

    def _long(self, rng):
        request = self._request(rng, rng.randint(2000, 6000),
                                rng.randint(4, 32))
        return self._read(self.stub.Generate(request, timeout=300))

    def _cancel(self, rng):
        call = self.stub.Generate(self._request(rng, 16, 256), timeout=300)
        keep = rng.randint(0, 40)
        tokens = 0
        for chunk in call:
            tokens += len(chunk.token_ids)
            if tokens >= keep:
                break
        call.cancel()
        raise_if_failed(call)
        return tokens

    def _deadline(self, rng):
        request = self._request(rng, rng.randint(4, 256), 512)
        return self._read(self.stub.Generate(
            request, timeout=rng.uniform(0.05, 2.0)))

    def _slow(self, rng):
        request = self._request(rng, 8, rng.randint(8, 48))
        return self._read(self.stub.Generate(request, timeout=300),
                          rng.uniform(0.02, 0.2))

    def _stall(self, rng):
        call = self.stub.Generate(self._request(rng, 8, 4096), timeout=300)
        tokens = len(next(call).token_ids)
        time.sleep(rng.uniform(1, 10))
        call.cancel()
        raise_if_failed(call)
        return tokens

    def _unary(self, rng):
        kind = rng.randrange(3)
        if kind == 0:
            text = " ".join(rng.choice(WORDS) for _ in range(32))
            self.stub.Tokenize(slabserve_pb2.TokenizeRequest(text=text),
                               timeout=30)
        elif kind == 1:
            ids = [rng.randrange(3, 200) for _ in range(32)]
            self.stub.Detokenize(slabserve_pb2.DetokenizeRequest(ids=ids),
                                 timeout=30)
        else:
            self.stub.GetModelInfo(slabserve_pb2.ModelInfoRequest(),
                                   timeout=30)
        return 0


def raise_if_failed(call):
    """A stream this side cancelled ends CANCELLED; anything else is news."""
    code = call.code()
    if code not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.OK):
        raise call


def sample(server, started, outcomes, tokens):
    m = read_metrics(server.metrics_port)
    row = {"minute": round((time.monotonic() - started) / 60, 2),
           "slots_in_use": int(m.get("slabserve_slots_in_use", -1)),
           "running": int(m.get("slabserve_running", -1)),
           "waiting": int(m.get("slabserve_waiting", -1)),
           "tokens": tokens, "outcomes": dict(sorted(outcomes.items()))}
    row.update(proc_status(server.proc.pid))
    return row


def markdown(rows):
    lines = ["| minute | slots in use | running | waiting | RSS MiB | fds | "
             "threads | tokens | streams ended |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %.1f | %d | %d | %d | %.1f | %d | %d | %d | %d |" % (
            r["minute"], r["slots_in_use"], r["running"], r["waiting"],
            r["rss_mib"], r["fds"], r["threads"], r["tokens"],
            sum(r["outcomes"].values())))
    return "\n".join(lines)


def main():
    args = parse_args()
    work = tempfile.mkdtemp(prefix="soak.")
    server = Server(args, work)
    print("server pid %d on 127.0.0.1:%d, log %s" % (
        server.proc.pid, server.port, server.log_path), flush=True)
    channel = grpc.insecure_channel("127.0.0.1:%d" % server.port)
    stub = slabserve_pb2_grpc.SlabserveStub(channel)
    started = time.monotonic()
    rows = [sample(server, started, collections.Counter(), 0)]
    load = Load(stub, args.workers, args.seed)
    end = started + args.minutes * 60
    totals = collections.Counter()
    while time.monotonic() < end:
        time.sleep(max(0, min(args.interval, end - time.monotonic())))
        outcomes, tokens = load.take()
        totals.update(outcomes)
        rows.append(sample(server, started, outcomes, tokens))
        print(json.dumps(rows[-1]), flush=True)
    load.join()
    outcomes, tokens = load.take()
    totals.update(outcomes)
    idle_deadline = time.monotonic() + 60
    while time.monotonic() < idle_deadline:
        if read_metrics(server.metrics_port).get("slabserve_slots_in_use"):
            time.sleep(0.5)
        else:
            break
    rows.append(sample(server, started, outcomes, tokens))
    channel.close()
    server.proc.send_signal(signal.SIGTERM)
    exit_code = server.proc.wait(timeout=120)
    result = {"minutes": args.minutes, "workers": args.workers,
              "behaviours": dict(BEHAVIOURS), "samples": rows,
              "outcomes": dict(sorted(totals.items())),
              "server_exit_code": exit_code}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    print(markdown(rows))
    print("outcomes:", json.dumps(result["outcomes"]))
    print("server exit code after SIGTERM:", exit_code)
    return 0 if exit_code == 0 and rows[-1]["slots_in_use"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
