"""Counts CI results and prints one line "N passed, N failed, N skipped".

usage: count_results.py [--bazel LOG TESTLOGS]... [--verdicts LOG]...

--bazel: a `bazel test` run's output and its testlogs folder; every test
case in the test.xml files of the targets the run reported counts, plus
targets that never produced results (build failures, timeouts) and failed
targets whose XML holds no failing case. --verdicts: a log of lines "<check>: PASSED" / "<check>: FAILED"
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


def result_files(log, testlogs):
    """test.xml files of the targets this run reported (a testlogs folder
    also keeps results of targets that earlier runs tested)."""
    targets = set(re.findall(r"^//(\S+)\s+(?:\(cached\) )?[A-Z]", log, re.M))
    if not targets:
        return glob.glob(os.path.join(testlogs, "**/test.xml"), recursive=True)
    paths = []
    for target in sorted(targets):
        folder = os.path.join(testlogs, target.replace(":", "/"))
        paths += (glob.glob(os.path.join(folder, "test.xml")) or
                  glob.glob(os.path.join(folder, "run_*_of_*", "test.xml")))
    return paths


def count_bazel(log, testlogs):
    passed = failed = skipped = 0
    for path in result_files(log, testlogs):
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
    failed += len(re.findall(r"^//\S+\s+(FAILED TO BUILD|NO STATUS)", log, re.M))
    for target in re.findall(r"^//(\S+)\s+FAILED in", log, re.M):
        path = os.path.join(testlogs, target.replace(":", "/"), "test.xml")
        try:
            if not has_failure(ET.parse(path).getroot()):
                failed += 1
        except (OSError, ET.ParseError):
            pass  # already counted above
    skipped += len(re.findall(r"^//\S+\s+SKIPPED", log, re.M))
    return passed, failed, skipped


def count_verdicts(log):
    passed = len(re.findall(r"^[\w .-]+: PASSED", log, re.M))
    failed = len(re.findall(r"^[\w .-]+: FAILED", log, re.M))
    return passed, failed, 0


def main(argv):
    totals = [0, 0, 0]
    i = 0
    while i < len(argv):
        if argv[i] == "--bazel":
            log = open(argv[i + 1], errors="replace").read()
            counts = count_bazel(log, argv[i + 2])
            i += 3
        elif argv[i] == "--verdicts":
            counts = count_verdicts(open(argv[i + 1], errors="replace").read())
            i += 2
        else:
            sys.exit("unknown argument " + argv[i])
        totals = [t + c for t, c in zip(totals, counts)]
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")


if __name__ == "__main__":
    main(sys.argv[1:])
