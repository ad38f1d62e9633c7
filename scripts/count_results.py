"""Counts CI results and prints one line "N passed, N failed, N skipped".

usage: count_results.py [--bazel LOG TESTLOGS]... [--bazel-log LOG]...
                        [--verdicts LOG]...

--bazel: a `bazel test` run's output and its testlogs folder; every test
case in the test.xml files counts, plus targets that never produced results
(build failures, timeouts) and failed targets whose XML holds no failing
case. A target the run skipped (incompatible, e.g. CUDA tests without
--config=cuda) counts as one skipped test unless another run left its
test.xml, whose cases then count instead. --bazel-log: the output of a
further `bazel test` run (e.g. --config=cuda) writing into the previous
--bazel testlogs folder, whose cases that folder already counts: only its
log-level failures count. --verdicts: a log of lines "<check>: PASSED" / "<check>: FAILED"
(first run, fuzzers, format check); each such line counts once.
"""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET


def has_failure(root):
    return any(c.find("failure") is not None or c.find("error") is not None
               for c in root.iter("testcase"))


def count_xml(testlogs):
    passed = failed = skipped = 0
    for path in glob.glob(os.path.join(testlogs, "**/test.xml"), recursive=True):
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError:
            failed += 1
            continue
        for case in root.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif (case.find("skipped") is not None or
                  case.get("result") == "skipped"):
                skipped += 1
            else:
                passed += 1
    return passed, failed, skipped


def count_log(log, testlogs):
    """Failures and skips a run's output shows beyond its test.xml files."""
    failed = skipped = 0
    failed += len(re.findall(r"^//\S+\s+(FAILED TO BUILD|NO STATUS)", log, re.M))
    for target in re.findall(r"^//(\S+)\s+FAILED in", log, re.M):
        path = os.path.join(testlogs, target.replace(":", "/"), "test.xml")
        try:
            if not has_failure(ET.parse(path).getroot()):
                failed += 1
        except (OSError, ET.ParseError):
            pass  # already counted above
    for target in re.findall(r"^//(\S+)\s+SKIPPED", log, re.M):
        path = os.path.join(testlogs, target.replace(":", "/"), "test.xml")
        if not os.path.exists(path):
            skipped += 1
    return 0, failed, skipped


def count_verdicts(log):
    passed = len(re.findall(r"^[\w .-]+: PASSED", log, re.M))
    failed = len(re.findall(r"^[\w .-]+: FAILED", log, re.M))
    return passed, failed, 0


def main(argv):
    totals = [0, 0, 0]
    testlogs = None
    i = 0
    while i < len(argv):
        if argv[i] == "--bazel":
            log = open(argv[i + 1], errors="replace").read()
            testlogs = argv[i + 2]
            counts = [a + b for a, b in zip(count_xml(testlogs),
                                            count_log(log, testlogs))]
            i += 3
        elif argv[i] == "--bazel-log":
            if testlogs is None:
                sys.exit("--bazel-log needs an earlier --bazel")
            counts = count_log(open(argv[i + 1], errors="replace").read(),
                               testlogs)
            i += 2
        elif argv[i] == "--verdicts":
            counts = count_verdicts(open(argv[i + 1], errors="replace").read())
            i += 2
        else:
            sys.exit("unknown argument " + argv[i])
        totals = [t + c for t, c in zip(totals, counts)]
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")


if __name__ == "__main__":
    main(sys.argv[1:])
