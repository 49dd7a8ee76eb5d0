#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Run rdma-core's run_tests.py and report every test as TAP.

    tap-run.py [--reference FILE... [--todo FILE]] RUN_TESTS_PY [arguments...]

run_tests.py itself runs, unchanged, with its own arguments (--dev, --gid,
-v, ...); only unittest's text runner is swapped for one that prints a TAP
line per test on stdout as it completes: "ok" for a pass, "ok ... # SKIP"
for a skip, "not ok" for a failure or an error.  unittest's own verbose
report goes to stdout as TAP comments.  The plan comes last, so a run that
dies half-way has no plan and counts as failed.

With --reference FILE (lines "RESULT TEST-ID", as written by
tests/pyverbs/make-reference), one more TAP test asserts that every test
the reference lists as "pass" passed here too; one such test per
--reference FILE.

With --todo FILE (lines "TEST-ID REASON"), a reference pass that does not
pass here and is listed there is reported on its own line as "not ok ...
# TODO REASON" (a feature the device does not have yet, counted as a skip
and shown, never as a pass) instead of failing the reference test.  A
listed test that passes is reported "ok ... # TODO" with a note to take it
off the list.
"""

import os
import runpy
import sys
import unittest
import unittest.runner


class PrefixStream:
    """A text stream that puts "# " before every line it writes.

    It stands in for sys.stdout while the tests run, so that what the
    tests print themselves is commented too, and TAP lines go out through
    tap(), which first ends a line the tests left open.
    """

    def __init__(self, out):
        self.out = out
        self.bol = True

    def tap(self, line):
        if not self.bol:
            self.out.write('\n')
            self.bol = True
        self.out.write(line + '\n')
        self.out.flush()

    def write(self, text):
        for chunk in text.splitlines(keepends=True):
            if self.bol:
                self.out.write('# ')
            self.out.write(chunk)
            self.bol = chunk.endswith('\n')
        return len(text)

    def flush(self):
        self.out.flush()

    def writeln(self, text=''):
        self.write(text + '\n')


class TapState:
    stream = None       # the PrefixStream over the real stdout
    count = 0
    results = {}        # test id -> pass | fail | error | skip | xfail | xpass
    references = []
    todo = {}           # test id -> reason it is not expected to pass yet


def tap_line(ok, name, directive=''):
    TapState.count += 1
    line = '%s %d - %s' % ('ok' if ok else 'not ok', TapState.count, name)
    if directive:
        line += ' # ' + directive
    TapState.stream.tap(line)


def one_line(text):
    return ' '.join(str(text).split())[:200]


class TapResult(unittest.TextTestResult):
    """TextTestResult that also prints one TAP line per test."""

    def startTest(self, test):
        super().startTest(test)
        self._outcome = None
        self._why = ''

    def _set(self, outcome, why=''):
        # The worst outcome of a test and its subtests wins.
        order = ['pass', 'skip', 'xfail', 'xpass', 'fail', 'error']
        if self._outcome is None or order.index(outcome) > order.index(self._outcome):
            self._outcome = outcome
            self._why = why

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set('pass')

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set('fail', one_line(err[1]))

    def addError(self, test, err):
        super().addError(test, err)
        if not isinstance(test, unittest.TestCase):
            # setUpClass/setUpModule and the like: no startTest for it.
            TapState.results[str(test)] = 'error'
            tap_line(False, '%s: error: %s' % (test, one_line(err[1])))
            return
        self._set('error', one_line(err[1]))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if not isinstance(test, unittest.TestCase):
            TapState.results[str(test)] = 'skip'
            tap_line(True, str(test), 'SKIP ' + one_line(reason))
            return
        self._set('skip', one_line(reason))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set('xfail', one_line(err[1]))

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set('xpass', 'unexpected success')

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            if issubclass(err[0], test.failureException):
                self._set('fail', '%s: %s' % (subtest, one_line(err[1])))
            else:
                self._set('error', '%s: %s' % (subtest, one_line(err[1])))

    def stopTest(self, test):
        super().stopTest(test)
        outcome = self._outcome or 'pass'
        name = test.id()
        TapState.results[name] = outcome
        if outcome == 'pass':
            tap_line(True, name)
        elif outcome == 'skip':
            tap_line(True, name, 'SKIP ' + self._why)
        elif outcome == 'xfail':
            tap_line(False, name, 'TODO expected failure: ' + self._why)
        else:
            tap_line(False, '%s: %s: %s' % (name, outcome, self._why))


class TapRunner(unittest.TextTestRunner):
    resultclass = TapResult

    def __init__(self, *args, **kwargs):
        kwargs['stream'] = TapState.stream
        kwargs['resultclass'] = TapResult
        super().__init__(*args, **kwargs)


def check_reference(reference):
    """One more TAP test: every test the reference passed passes here."""
    want = []
    with open(reference) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            result, name = line.split(None, 1)
            if result == 'pass':
                want.append(name.strip())
    missing = [n for n in want if TapState.results.get(n) != 'pass']
    ref = os.path.basename(reference)
    for n in sorted(TapState.todo):
        if n not in want:
            continue
        if n in missing:
            tap_line(False, '%s passes as in %s' % (n, ref),
                     'TODO ' + TapState.todo[n])
        else:
            tap_line(True, '%s passes as in %s (take it off the TODO list)'
                     % (n, ref), 'TODO ' + TapState.todo[n])
    missing = [n for n in missing if n not in TapState.todo]
    want = [n for n in want if n not in TapState.todo]
    if missing:
        tap_line(False, 'every test that passes in %s passes (%d of %d do not)'
                 % (ref, len(missing), len(want)))
        for n in missing:
            TapState.stream.tap('#   %s: %s' % (n, TapState.results.get(n, 'not run')))
    else:
        tap_line(True, 'every test that passes in %s passes (%d tests%s)'
                 % (ref, len(want), ', TODO items apart' if TapState.todo else ''))


def main():
    args = sys.argv[1:]
    while len(args) >= 2 and args[0] == '--reference':
        TapState.references.append(args[1])
        args = args[2:]
    if TapState.references and len(args) >= 2 and args[0] == '--todo':
        with open(args[1]) as f:
            for line in f:
                if line.startswith('#') or not line.strip():
                    continue
                name, _, reason = line.strip().partition(' ')
                TapState.todo[name] = reason.strip() or 'not supported yet'
        args = args[2:]
    if not args:
        sys.exit(__doc__)
    script = os.path.abspath(args[0])
    sys.argv = [script] + args[1:]
    sys.path.insert(0, os.path.dirname(script))
    unittest.runner.TextTestRunner = TapRunner
    TapState.stream = PrefixStream(sys.stdout)
    sys.stdout = TapState.stream
    status = 0
    try:
        runpy.run_path(script, run_name='__main__')
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.stdout = TapState.stream.out
        if TapState.count:
            for reference in TapState.references:
                check_reference(reference)
        # No plan when nothing ran: a run that never started is a failure.
        if TapState.count:
            TapState.stream.tap('1..%d' % TapState.count)
        sys.stdout.flush()
    if TapState.references and any(
            r in ('fail', 'error', 'xpass') for r in TapState.results.values()):
        status = status or 1
    sys.exit(status)


if __name__ == '__main__':
    main()
