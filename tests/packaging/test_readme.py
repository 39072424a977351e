#!/usr/bin/env python3
"""Runs a README section's commands as pasted (make test-readme).

Each `### ` subsection of a `## ` section (by default `## Quick start` of
README.md) becomes one bash script, run in a fresh temporary directory outside
the repository:

- a ```sh block runs verbatim;
- any other code block is a file to save: its first line is a comment that
  names it (`// src/main.rs`, `/* hello.c */`, `# hello.py`, `// main.go`), and
  it is written, verbatim, to that path relative to the directory the script
  is in at that point (the README says "save as" with that comment).

The environment is a user's: MAPCACHE is the clone (the README says to set it),
HOME is the temporary directory (so `make install PREFIX=$HOME/.local` stays
inside it); the tool caches that live under the real HOME (cargo, rustup, Go,
pip) are pointed back at it so nothing is downloaded twice, CARGO_TARGET_DIR
keeps the Rust snippet's build across runs, cargo works offline from the
crates the repository's build fetched, and pip finds its build tools in a
local wheelhouse (--wheelhouse) instead of asking PyPI on every run. A
subsection passes when its script exits 0 (and, with --expect, printed that
text). Every subsection runs, even after one fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\S*)\s*$")
FILE_COMMENT = re.compile(r"^(?://|#|/\*)\s*(\S+?)\s*(?:\*/)?\s*$")
SHELL_LANGS = {"sh", "bash"}


def subsections(readme: str, heading: str) -> List[Tuple[str, List[Tuple[str, str]]]]:
    """[(title, [(lang, code), ...])] for each ### subsection of the `heading` section."""
    lines = readme.splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        raise SystemExit(f"no {heading!r} section")
    sections: List[Tuple[str, List[Tuple[str, str]]]] = []
    i = start + 1
    while i < len(lines) and not lines[i].startswith("## "):
        line = lines[i]
        if line.startswith("### "):
            sections.append((line[4:].strip(), []))
        elif (m := FENCE.match(line)) and sections:
            lang = m.group(1)
            body = []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            sections[-1][1].append((lang, "\n".join(body) + "\n"))
        i += 1
    return sections


def shell_lines(code: str) -> List[str]:
    """The command lines of a shell block: continuations joined, blank lines and
    comment lines dropped.

    >>> shell_lines("# a comment\\ncd x && make \\\\\\n  install\\n\\n./hello  # runs it\\n")
    ['cd x && make    install', './hello  # runs it']
    """
    lines: List[str] = []
    pending = ""
    for raw in code.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def script_for(blocks: List[Tuple[str, str]]) -> str:
    parts = ["set -euo pipefail"]
    for n, (lang, code) in enumerate(blocks):
        if lang in SHELL_LANGS:
            parts.append(f"echo '-- shell block {n + 1}'")
            parts.append("set -x")
            # Each command line on its own, its failure fatal: `set -e` alone
            # lets `a && b` go on when `a` fails.
            for line in shell_lines(code):
                parts.append(f"{{ {line}\n}} || {{ rc=$?; echo \"FAILED (exit status $rc): \"{shlex.quote(line)} >&2; exit $rc; }}")
            parts.append("{ set +x; } 2>/dev/null")
            continue
        first = code.splitlines()[0] if code.strip() else ""
        m = FILE_COMMENT.match(first)
        if not m:
            raise SystemExit(f"a ```{lang} block does not name its file on its first line: {first!r}")
        path = m.group(1)
        marker = "MAPCACHE_README_EOF"
        assert marker not in code
        parts.append(f"echo '-- saving {path} ({lang} block {n + 1})'")
        parts.append(f"mkdir -p \"$(dirname {shlex.quote(path)})\"")
        parts.append(f"cat > {shlex.quote(path)} <<'{marker}'\n{code}{marker}")
    return "\n".join(parts) + "\n"


def tool_env(home: Path, wheelhouse: Path | None) -> dict:
    real_home = Path(os.environ.get("HOME", str(Path.home())))
    env = dict(os.environ)
    env.pop("MAPCACHE_LIBRARY", None)
    env.pop("VIRTUAL_ENV", None)
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    env.pop("MAKELEVEL", None)
    env["HOME"] = str(home)
    env["MAPCACHE"] = str(ROOT)
    env.setdefault("CARGO_HOME", str(real_home / ".cargo"))
    env.setdefault("RUSTUP_HOME", str(real_home / ".rustup"))
    env["CARGO_TARGET_DIR"] = str(ROOT / "target" / "readme")
    # The repository's own build (make lib, a prerequisite) has fetched every
    # crate the snippet needs; offline, cargo resolves from that cache instead
    # of asking the registry on every run.
    env["CARGO_NET_OFFLINE"] = "true"
    for var in ("GOPATH", "GOMODCACHE", "GOCACHE", "GOENV"):
        if var not in env:
            value = subprocess.run(["go", "env", var], capture_output=True, text=True).stdout.strip()
            if value:
                env[var] = value
    env.setdefault("XDG_CACHE_HOME", str(real_home / ".cache"))
    if wheelhouse is not None:
        env["PIP_NO_INDEX"] = "1"
        env["PIP_FIND_LINKS"] = str(wheelhouse)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Go's build cache does not notice a change in what pkg-config says
    # (golang/go#24544): the binding compiled in an earlier run would keep that
    # run's temporary prefix. A flag unique to this run keys it to this run.
    env["CGO_CPPFLAGS"] = (env.get("CGO_CPPFLAGS", "") + f" -DMAPCACHE_README_HOME={home.name}").strip()
    return env


def run_section(host: str, blocks: List[Tuple[str, str]], wheelhouse: Path | None,
                expect: str | None) -> bool:
    print(f"\n=== {host}", flush=True)
    script = script_for(blocks)
    slug = re.sub(r"[^a-z0-9]+", "-", host.rsplit(": ", 1)[-1].lower()).strip("-")[:40]
    with tempfile.TemporaryDirectory(prefix=f"mapcache-readme-{slug}.") as tmp:
        work = Path(tmp)
        if str(work).startswith(str(ROOT) + os.sep):
            raise SystemExit(f"{work} is inside the repository")
        (work / "quickstart.sh").write_text(script)
        proc = subprocess.run(
            ["bash", str(work / "quickstart.sh")],
            cwd=work,
            env=tool_env(work, wheelhouse),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        print(f"=== {host}: FAILED (exit status {proc.returncode})")
        return False
    if expect is not None and expect not in proc.stdout:
        print(f"=== {host}: FAILED (the output does not show {expect!r})")
        return False
    print(f"=== {host}: ok")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md", help="the README (default: README.md)")
    parser.add_argument("--section", default="## Quick start", help="the ## heading whose ### subsections run")
    parser.add_argument("--expect", help="text each subsection's output must contain")
    parser.add_argument("--wheelhouse", type=Path, help="a directory of wheels pip installs build tools from")
    parser.add_argument("only", nargs="*", help="run only these ### subsections (default: all)")
    args = parser.parse_args()
    readme = args.readme.resolve()
    sections = subsections(readme.read_text(), args.section)
    if not sections:
        raise SystemExit(f"{args.section!r} of {readme} has no ### subsections")
    wanted = {h.lower() for h in args.only}
    wheelhouse = args.wheelhouse.resolve() if args.wheelhouse else None
    name = f"{readme.relative_to(ROOT)}, {args.section.lstrip('# ')}"
    results = [(host, run_section(f"{name}: {host}", blocks, wheelhouse, args.expect))
               for host, blocks in sections if not wanted or host.lower() in wanted]
    # One line per section, in the form run_suites.py counts ("N passed, M failed").
    passed = sum(ok for _, ok in results)
    print(f"\n{name}: " + ", ".join(f"{h} {'ok' if ok else 'FAILED'}" for h, ok in results))
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
