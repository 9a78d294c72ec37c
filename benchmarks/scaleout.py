"""The scale-out benchmark: the scale-out test (tests/scaleout/test_scaleout.py) at full length,
then its table.

    .venv/bin/python benchmarks/scaleout.py          # as root: it makes network namespaces

Eight webhook stores limited to 1.5 calls/s each (12/s in all) and answering in 400 ms; 1, 2,
4, then 8 worker hosts (network namespaces with their own addresses, one worker of concurrency 1
each) on one PostgreSQL and one Redis; calls counted in the same 15 s window of each phase.
The table (calls/s, items/s, calls/s per channel, the most calls any channel saw in 1 s, how
many hosts served each channel) goes to var/scaleout-results.md. The database and Redis are
picked as for `make test` (scripts/testenv.py: DATABASE_URL / REDIS_URL when set).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "var" / "scaleout-results.md"


def main(argv: list[str]) -> int:
    RESULTS.unlink(missing_ok=True)
    command = [
        sys.executable, "scripts/testenv.py", "--label", "bench scaleout", "--",
        sys.executable, "-m", "pytest", "tests/scaleout/test_scaleout.py", "-q", "-rs", "-p", "no:cacheprovider",
        "-o", "timeout=900", *argv,
    ]
    code = subprocess.call(command, cwd=ROOT, env={**os.environ, "SYNCSVC_SCALEOUT": "full"})
    if RESULTS.exists():
        print(RESULTS.read_text())
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
