"""Entry point: ``python -P bench [...]`` (a directory run as a script) from the repository root.

`bench/` is not an installed package and ``-P`` (needed so the repository's `millstream/` folder does not
shadow the installed package) keeps the current directory off sys.path, so ``python -P -m bench`` cannot
find it. Run as a directory, Python puts `bench/` itself first on sys.path; this file swaps that for the
repository root appended at the *end* of sys.path, after site-packages, so `bench` is importable as a package
while `millstream` still resolves to the installed one.
"""

import os
import sys

if not __package__:
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
    sys.path.append(os.path.dirname(_here))

from bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
