"""Checks a slabload JSON report for internal consistency.

usage: check_report.py REPORT.json [--requests=N] [--output-tokens=N]
                       [--no-errors] [--server-metrics]
"""
import argparse
import json
import sys


def check_point(point, args):
    problems = []
    sent, done, errors = point["sent"], point["completed"], point["errors"]
    if sent != done + errors:
        problems.append("sent %d != completed %d + errors %d" % (sent, done,
                                                                 errors))
    if sum(e["count"] for e in point["errors_by_status"].values()) != errors:
        problems.append("errors_by_status does not add up to errors")
    if args.requests is not None and sent != args.requests:
        problems.append("sent %d, expected %d" % (sent, args.requests))
    if args.no_errors and errors:
        problems.append("errors: %s" % point["errors_by_status"])
    if done == 0:
        problems.append("nothing completed")
    if args.output_tokens is not None and point["output_tokens"] != (
            args.output_tokens * sent):
        problems.append("output_tokens %d, expected %d" % (
            point["output_tokens"], args.output_tokens * sent))
    for name in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        d = point[name]
        chain = [d["p50"], d["p90"], d["p95"], d["p99"], d["max"]]
        if chain != sorted(chain) or min(chain) < 0:
            problems.append("%s percentiles out of order: %s" % (name, chain))
    if point["e2e_ms"]["p50"] < point["ttft_ms"]["p50"]:
        problems.append("median E2E below median TTFT")
    if point["output_tokens_per_s"] <= 0 or point["requests_per_s"] <= 0:
        problems.append("no throughput")
    if args.server_metrics and not point.get("server_metrics"):
        problems.append("no server metrics (%s)" %
                        point.get("server_metrics_error", "not scraped"))
    return problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("report")
    parser.add_argument("--requests", type=int)
    parser.add_argument("--output-tokens", type=int)
    parser.add_argument("--points", type=int, default=1)
    parser.add_argument("--no-errors", action="store_true")
    parser.add_argument("--server-metrics", action="store_true")
    args = parser.parse_args()
    with open(args.report) as f:
        report = json.load(f)
    points = report["points"]
    problems = []
    if len(points) != args.points:
        problems.append("%d points, expected %d" % (len(points), args.points))
    for i, point in enumerate(points):
        problems += ["point %d: %s" % (i, p) for p in check_point(point, args)]
    for p in problems:
        print("%s: %s" % (args.report, p), file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
