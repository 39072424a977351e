#!/usr/bin/env python3
"""`make test`: run every suite, even after one fails, then print one table.

Each suite is a make target (`test-c`, `test-python`, ...). Its output goes to
the terminal as it runs and to <logs>/<suite>.log; the number of tests that
passed and failed is read from that output, in the format of whichever test
runner printed it (cargo test, pytest, go test -v, the C suite). A suite that
prints no test counts (fmt and clippy, for instance) counts as one check. A
suite whose command fails counts at least one failure, even when the counts it
printed show none (a build error, a crash). Exits 1 if any suite failed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

# cargo test: "test result: ok. 12 passed; 0 failed; 0 ignored; ..."
CARGO = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed")
# The C suite and the README test: "36 passed, 1 failed"; doctest -v:
# "6 passed and 0 failed."
C_SUITE = re.compile(r"^(\d+) passed(?:,| and) (\d+) failed\.?$")
# pytest's last line: "3 failed, 120 passed, 2 skipped in 12.34s" (with -q),
# or the same between rows of "=" (without).
PYTEST = re.compile(r"^=*\s*((?:\d+ [a-z]+(?:, )?)+) in [\d.]+s")
# go test -v: one line per test and subtest.
GO_PASS = re.compile(r"^\s*--- PASS: ")
GO_FAIL = re.compile(r"^\s*--- FAIL: ")


def count_tests(lines: List[str]) -> Optional[Tuple[int, int]]:
    """(passed, failed) from a suite's output, or None if it printed no counts.

    >>> count_tests(["test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured",
    ...              "test result: FAILED. 3 passed; 2 failed; 0 ignored"])
    (15, 2)
    >>> count_tests(["36 passed, 1 failed", "6 passed and 0 failed."])
    (42, 1)
    >>> count_tests(["1 failed, 120 passed, 2 skipped in 12.34s"])
    (120, 1)
    >>> count_tests(["========== 2 errors, 7 passed in 0.50s =========="])
    (7, 2)
    >>> count_tests(["--- PASS: TestGet (0.01s)", "    --- FAIL: TestGet/miss (0.00s)",
    ...              "--- FAIL: TestGet (0.01s)"])
    (1, 2)
    >>> count_tests(["cargo fmt --all --check"]) is None
    True
    """
    passed = failed = 0
    found = False
    for line in lines:
        line = line.rstrip("\n")
        if m := CARGO.match(line) or C_SUITE.match(line):
            passed += int(m.group(1))
            failed += int(m.group(2))
            found = True
        elif m := PYTEST.match(line):
            for part in m.group(1).split(", "):
                n, word = part.split(" ", 1)
                if word == "passed":
                    passed += int(n)
                elif word in ("failed", "error", "errors"):
                    failed += int(n)
            found = True
        elif GO_PASS.match(line):
            passed += 1
            found = True
        elif GO_FAIL.match(line):
            failed += 1
            found = True
    return (passed, failed) if found else None


@dataclass
class Result:
    suite: str
    ok: bool
    passed: int
    failed: int
    seconds: float
    counted: bool


def run_suite(make: List[str], target: str, log_dir: Path) -> Result:
    suite = target[len("test-"):] if target.startswith("test-") else target
    log_path = log_dir / f"{suite}.log"
    print(f"\n===== {suite} ({' '.join(make)} {target}); log: {log_path}", flush=True)
    started = time.monotonic()
    lines: List[str] = []
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        proc = subprocess.Popen(
            [*make, "--no-print-directory", target],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
            lines.append(line)
        rc = proc.wait()
    seconds = time.monotonic() - started
    counts = count_tests(lines)
    ok = rc == 0
    if counts is None:
        passed, failed = (1, 0) if ok else (0, 1)
    else:
        passed, failed = counts
        if not ok and failed == 0:
            failed = 1  # the command failed although no test did: a build error, a crash
    verdict = "passed" if ok else f"FAILED (exit status {rc})"
    print(f"===== {suite}: {verdict} in {seconds:.0f} s", flush=True)
    return Result(suite, ok, passed, failed, seconds, counts is not None)


def table(results: List[Result]) -> str:
    rows = [("suite", "result", "passed", "failed", "seconds")]
    for r in results:
        note = "" if r.counted else " (checks)"
        rows.append((r.suite, "ok" if r.ok else "FAIL", f"{r.passed}{note}", str(r.failed), f"{r.seconds:.0f}"))
    total_s = sum(r.seconds for r in results)
    ok_all = all(r.ok for r in results)
    rows.append(("total", "ok" if ok_all else "FAIL", str(sum(r.passed for r in results)),
                 str(sum(r.failed for r in results)), f"{total_s:.0f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [row[j].rjust(widths[j]) for j in range(2, len(row))]
        out.append("  ".join(cells))
        if i == 0 or i == len(rows) - 2:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make", default="make", help="the make command (split on spaces)")
    parser.add_argument("--logs", required=True, type=Path, help="directory for the suites' logs")
    parser.add_argument("targets", nargs="+", help="the suites' make targets, in order")
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    make = args.make.split()
    results = [run_suite(make, t, args.logs) for t in args.targets]
    print("\n" + table(results))
    failed = [r.suite for r in results if not r.ok]
    if failed:
        print(f"\nmake test: FAILED: {', '.join(failed)} (logs in {args.logs})")
        return 1
    print("\nmake test: all suites passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
