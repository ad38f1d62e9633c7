"""Counts CI results and prints one line "N passed, N failed, N skipped".

usage: count_results.py [--bazel LOG TESTLOGS]... [--verdicts LOG]...

--bazel: a `bazel test` run's output and its testlogs folder; every test
case in the test.xml files of the targets the run reported (and did not
skip) counts, plus targets that never produced results (build failures,
timeouts) and failed targets whose XML holds no failing case. A target a run
skipped (incompatible, e.g. CUDA tests without --config=cuda) counts as one
skipped test unless another run reported it, whose cases then count
instead. --verdicts: a log of lines "<check>: PASSED" / "<check>: FAILED"
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


def reported_targets(log):
    """Targets the run reported a status for, and those it skipped."""
    statuses = re.findall(r"^//(\S+)\s+(?:\(cached\) )?([A-Z]+)", log, re.M)
    skipped = {target for target, status in statuses if status == "SKIPPED"}
    return {target for target, _ in statuses} - skipped, skipped


def result_files(targets, testlogs):
    paths = []
    for target in sorted(targets):
        folder = os.path.join(testlogs, target.replace(":", "/"))
        paths += (glob.glob(os.path.join(folder, "test.xml")) or
                  glob.glob(os.path.join(folder, "run_*_of_*", "test.xml")))
    return paths


def count_cases(paths):
    passed = failed = skipped = 0
    for path in paths:
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
    return [passed, failed, skipped]


def count_bazel(log, testlogs):
    """Counts of one run, the targets it ran and the targets it skipped."""
    ran, skipped_targets = reported_targets(log)
    counts = count_cases(result_files(ran, testlogs))
    counts[1] += len(re.findall(r"^//\S+\s+(FAILED TO BUILD|NO STATUS)", log,
                                re.M))
    for target in re.findall(r"^//(\S+)\s+FAILED in", log, re.M):
        path = os.path.join(testlogs, target.replace(":", "/"), "test.xml")
        try:
            if not has_failure(ET.parse(path).getroot()):
                counts[1] += 1
        except (OSError, ET.ParseError):
            pass  # already counted above
    return counts, ran, skipped_targets


def count_verdicts(log):
    passed = len(re.findall(r"^[\w .-]+: PASSED", log, re.M))
    failed = len(re.findall(r"^[\w .-]+: FAILED", log, re.M))
    return [passed, failed, 0]


def main(argv):
    totals = [0, 0, 0]
    ran, skipped = set(), set()
    i = 0
    while i < len(argv):
        if argv[i] == "--bazel":
            log = open(argv[i + 1], errors="replace").read()
            counts, run_ran, run_skipped = count_bazel(log, argv[i + 2])
            ran |= run_ran
            skipped |= run_skipped
            i += 3
        elif argv[i] == "--verdicts":
            counts = count_verdicts(open(argv[i + 1], errors="replace").read())
            i += 2
        else:
            sys.exit("unknown argument " + argv[i])
        totals = [t + c for t, c in zip(totals, counts)]
    totals[2] += len(skipped - ran)
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")


if __name__ == "__main__":
    main(sys.argv[1:])
