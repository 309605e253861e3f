"""Runs one end-to-end test for ctest: exit 0 when it passed, 1 when it
failed, and 77 (ctest's SKIP_RETURN_CODE, tests/CMakeLists.txt) when it
skipped itself because its environment is missing, so that ctest reports a
skip as a skip, not as a pass. scripts/test.sh then fails a CI run in which
any test skipped: CI provides every environment.

Usage: run.py tests.e2e.MODULE.CLASS.TEST
"""
import os
import sys
import unittest

SKIPPED = 77
# As `python3 -m unittest` would, from the project's root: tests.e2e.* importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main(name):
    suite = unittest.defaultTestLoader.loadTestsFromName(name)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.skipped and result.testsRun == len(result.skipped):
        return SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
