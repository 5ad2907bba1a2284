"""`python -m safemlrm` and the `safemlrm` console script (kept here so the entry point never moves)."""

from safemlrm.verbs.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
