"""What every command-line tool shares: one-line errors, exit codes, Ctrl-C and SIGTERM.

    if __name__ == "__main__":
        sys.exit(run(main))

A :class:`UserError` (bad flag, missing file, diverged training ...) prints
``error: <message>`` as one line on stderr and exits with status 2, without a traceback.
So does running out of memory, which a size that is too large for this machine causes
(``--hidden 100000``, ``--n 10000000000``), and a size no array can have at all. Ctrl-C
exits with status 130, and SIGTERM (``kill``, a job scheduler) does what Ctrl-C does and
exits with status 143. Any other exception is a bug and keeps its traceback.

When the program reading a tool's output goes away (``python -m tinyvae.train ... | head -3``),
the tool carries on with its work and writes nothing more to that stream: a training run
still finishes its epochs and its run folder, and exits as it would have.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading

from tinyvae.errors import UserError

USER_ERROR, INTERRUPTED, TERMINATED = 2, 130, 143  # 128 + SIGINT, 128 + SIGTERM
#: What NumPy says of a size no array can have (--hidden 9223372036854775808): too big, too.
TOO_BIG = re.compile(r"Maximum allowed (dimension|size) exceeded|array is too big")


def run(main, argv=None) -> int:
    """Call ``main(argv)`` and turn its outcome into an exit status."""
    with output_may_close(), sigterm_interrupts():
        try:
            return int(main(argv) or 0)
        except UserError as error:
            return report(str(error))
        except (MemoryError, ValueError) as error:
            if isinstance(error, ValueError) and not TOO_BIG.search(str(error)):
                raise  # any other ValueError is a bug
            return report(
                f"out of memory ({error or 'no detail'}): ask for less, such as a smaller "
                "--hidden, --channels, --latent-dim, --batch-size, --samples, --n or --k"
            )
        except Terminated:
            print("\nterminated", file=sys.stderr)
            return TERMINATED
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return INTERRUPTED


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, like Ctrl-C: cleanups run (see run)."""


@contextlib.contextmanager
def sigterm_interrupts():
    """Within this block SIGTERM raises :class:`Terminated`, so that what Ctrl-C cleans up
    (a new run folder left empty, a temporary file) is cleaned up too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Closable:
    """A text stream (stdout, stderr) that, once its reader has gone, drops what it is given.

    Writing into a pipe whose reader has exited raises BrokenPipeError. From then on the
    stream's file descriptor points at os.devnull (so that Python's own flush at exit
    succeeds too) and every later write is dropped."""

    def __init__(self, stream):
        self.stream, self.closed_by_reader = stream, False

    def _reader_gone(self):
        self.closed_by_reader = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def write(self, text):
        if not self.closed_by_reader:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self):
        if not self.closed_by_reader:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def __getattr__(self, name):  # isatty, encoding, fileno ...: the stream's own
        return getattr(self.stream, name)


@contextlib.contextmanager
def output_may_close():
    """Within this block, stdout and stderr survive their reader going away (see Closable)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (s if s is None else Closable(s) for s in saved)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        sys.stdout, sys.stderr = saved


def report(message: str) -> int:
    """Print ``error: message`` as one line on stderr; return the user-error status."""
    message = " ".join(message.split())  # one line, whatever the message held
    print(f"error: {message}", file=sys.stderr)
    return USER_ERROR


@contextlib.contextmanager
def ctrl_c_stops_gently(notice="stopping after this step (press Ctrl-C again to quit at once)"):
    """Within this block, the first Ctrl-C or SIGTERM only sets a flag; yields ``stop()``,
    which returns 0 until then and the signal's exit status (130 or 143) after.

    The training loop checks ``stop()`` after every step and then saves a consistent
    checkpoint. A second signal interrupts at once, as usual. (Signals can only be caught
    in the main thread; elsewhere ``stop()`` is always 0.)
    """
    requested = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: 0
        return
    caught = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.getsignal(number) for number in caught}

    def handler(signum, frame):
        requested.append(128 + signum)
        for number in caught:  # the next one interrupts at once
            signal.signal(number, previous[number])
        print(f"\n{notice}", file=sys.stderr, flush=True)

    for number in caught:
        signal.signal(number, handler)
    try:
        yield lambda: requested[0] if requested else 0
    finally:
        for number in caught:
            signal.signal(number, previous[number])
