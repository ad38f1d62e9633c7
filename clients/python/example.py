#!/usr/bin/python3
"""Streams a completion from a slabserve server.

usage: example.py [HOST:PORT] [PROMPT]
"""
import sys

import slabserve

target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
prompt = sys.argv[2] if len(sys.argv) > 2 else "Once upon a time"

with slabserve.Client(target, timeout=60) as client:
    print("health:", client.health())
    info = client.info()
    print("model: %s (%s, %d layers)" % (info.name, info.architecture,
                                          info.num_layers))
    print("prompt ids:", client.tokenize(prompt))
    for chunk in client.generate(prompt, max_tokens=32, temperature=0.8,
                                 seed=1):
        print(chunk.text, end="", flush=True)
        if chunk.finish_reason:
            print("\n[%s, %d tokens]" % (
                slabserve.slabserve_pb2.FinishReason.Name(chunk.finish_reason),
                chunk.usage.completion_tokens))
