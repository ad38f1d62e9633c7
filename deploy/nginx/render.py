#!/usr/bin/env python3
"""Writes an nginx gRPC gateway config from slabserve.conf.template.

usage: render.py --listen=HOST:PORT --replica=HOST:PORT [--replica=...]
                 --runtime-dir=DIR [--user=NAME] [--workers=N]
                 [--max-fails=N] [--fail-timeout=SECONDS] > nginx.conf
"""
import argparse
import os
import re
import sys

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "slabserve.conf.template")
HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$")


def render(listen, replicas, runtime_dir, user=None, workers="auto",
           max_fails=1, fail_timeout=10):
    for address in [listen] + replicas:
        if not HOST_PORT.match(address):
            raise ValueError("not HOST:PORT: %r" % address)
    if not replicas:
        raise ValueError("at least one --replica is needed")
    if not os.path.isabs(runtime_dir):
        raise ValueError("--runtime-dir must be absolute: %r" % runtime_dir)
    servers = "\n".join(
        "    server %s max_fails=%d fail_timeout=%ds;" %
        (r, max_fails, fail_timeout) for r in replicas)
    values = {
        "USER": "user %s;" % user if user else "",
        "WORKERS": str(workers),
        "RUNTIME": runtime_dir.rstrip("/") or "/",
        "SERVERS": servers,
        "LISTEN": listen,
    }
    with open(TEMPLATE) as f:
        text = f.read()
    text = re.sub(r"\{\{([A-Z]+)\}\}", lambda m: values[m.group(1)], text)
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--replica", action="append", default=[])
    parser.add_argument("--runtime-dir", required=True)
    parser.add_argument("--user")
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--max-fails", type=int, default=1)
    parser.add_argument("--fail-timeout", type=int, default=10)
    args = parser.parse_args()
    try:
        sys.stdout.write(render(args.listen, args.replica, args.runtime_dir,
                                args.user, args.workers, args.max_fails,
                                args.fail_timeout))
    except ValueError as e:
        sys.exit("render.py: %s" % e)


if __name__ == "__main__":
    main()
