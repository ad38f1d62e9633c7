#!/usr/bin/env python3
"""Offline stand-in for Bazel's coverage merger and report generator.

Merges gcc's *.gcov.json.gz files (merger mode) or lcov reports (report mode)
into one lcov file, so `bazel coverage` works without downloading Java tools.
"""
import collections
import glob
import gzip
import json
import os
import re
import sys


def main():
    opts = collections.defaultdict(list)
    for arg in sys.argv[1:]:
        key, _, value = arg.lstrip("-").partition("=")
        opts[key].append(value)
    hits = collections.defaultdict(collections.Counter)
    for cov_dir in opts["coverage_dir"]:
        for path in glob.glob(cov_dir + "/**/*.gcov.json.gz", recursive=True):
            for f in json.load(gzip.open(path, "rt"))["files"]:
                for line in f["lines"]:
                    hits[f["file"]][line["line_number"]] += line["count"]
    for reports in opts["reports_file"]:
        for path in open(reports).read().split():
            if not os.path.exists(path):
                continue
            source = None
            for line in open(path):
                if line.startswith("SF:"):
                    source = line[3:].strip()
                    hits[source]
                elif line.startswith("DA:") and source:
                    number, count = line[3:].split(",")[:2]
                    hits[source][int(number)] += int(count)
    drop = [re.compile(r) for r in opts["filter_sources"]]
    keep = None
    manifest = opts["source_file_manifest"]
    if manifest and os.path.exists(manifest[0]):
        keep = set(open(manifest[0]).read().split())
    with open(opts["output_file"][0], "w") as out:
        for source in sorted(hits):
            if any(r.match(source) for r in drop):
                continue
            if keep is not None and source not in keep:
                continue
            lines = hits[source]
            out.write("SF:%s\n" % source)
            for number in sorted(lines):
                out.write("DA:%d,%d\n" % (number, lines[number]))
            out.write("LH:%d\nLF:%d\nend_of_record\n" %
                      (sum(1 for c in lines.values() if c), len(lines)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
