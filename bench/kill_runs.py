"""Kill runs for the README's reliability figures: every crash-safety test with 20 kills each.

Runs ``tests/test_kills.py`` (search, report export, removal, extraction with saved crops: each
killed with SIGKILL at 20 seeded random moments, the workspace checked after every kill; plus
four processes at once) and ``tests/test_gallery_cli.py``'s enrolment and rebuild kill tests,
then prints what they printed and pytest's summary. Takes about 10 minutes on 2 cores.

    .venv/bin/python bench/kill_runs.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="kills per operation (default 20)")
    args = parser.parse_args()
    env = {**os.environ, "WORKBENCH_KILL_RUNS": str(args.runs)}
    tests = [
        "tests/test_kills.py",
        "tests/test_gallery_cli.py::test_enrolment_killed_at_random_moments_resumes",
        "tests/test_gallery_cli.py::test_rebuild_killed_at_random_moments_keeps_the_previous_index",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-rf", "-p", "no:cacheprovider", *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [
        line for line in proc.stdout.splitlines() if "kills landed" in line or " passed" in line or " failed" in line or "FAILED" in line
    ]
    print(f"kill runs per operation: {args.runs}")
    print("\n".join(lines))
    print(f"\ncommand: .venv/bin/python bench/kill_runs.py --runs {args.runs}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
