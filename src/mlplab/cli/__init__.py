"""The ``mlplab`` command line: parses arguments and makes one library call each.

    parser.py    the arguments of every command
    commands.py  what each command does with them
    __init__     main(): dispatch, exit codes, signals and warnings of mlplab's own process

Exit codes: 0 success, 2 bad input (a one-paragraph error naming the key or file and
what is allowed), 1 failure. Heavy imports happen inside the command that needs them.
"""

from __future__ import annotations

import signal
import sys
import warnings
from typing import Any, Sequence

from . import commands
from .parser import build_parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """mlplab's own warnings as one line on stderr (they say what happened and why; the
    source line Python adds means nothing to a user of the command); others as usual."""
    text = str(message)
    if not text.startswith("mlplab:"):
        return _default_show(message, category, filename, lineno, file, line)
    print(text, file=file if file is not None else sys.stderr)


_default_show = warnings.showwarning


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM in mlplab's own process: the work in progress unwinds as after
    Ctrl-C (runs and sweeps marked interrupted, workers stopped, finished runs kept), and
    the command exits 128 + the signal's number, as a shell reports it.

    A subclass, not KeyboardInterrupt itself: CPython remembers a bare KeyboardInterrupt
    that passed through code some extension ran with ``PyRun_String`` and, at exit, kills
    the process with SIGINT even after ``main`` caught it and returned (seen as an exit
    status of -2 about one time in twelve)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command of ``argv`` (default: this process's arguments) and return its exit
    code; as the console script (``argv`` None) the process ends here (:func:`_end_now`)."""
    code = _command(argv)
    if argv is None:
        _end_now(code)
    return code


def _end_now(code: int) -> None:
    """End the console script's process with ``code`` once the command is done, without
    tearing the interpreter down: freeing every object one by one (torch's modules, a
    report's 300,000 objects) took 0.4-0.65 s that the user waited for at the prompt. The
    exit handlers libraries registered still run first, and output is flushed; where
    another thread is still running, the process exits the normal way."""
    import atexit
    import os
    import threading

    if threading.active_count() > 1:
        return
    atexit._run_exitfuncs()              # what a normal exit runs before its teardown
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):    # a closed pipe or stream: nothing more to say
            pass
    os._exit(code)


def _command(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from mlplab.config import ConfigError
    from mlplab.store.store import StoreError

    if argv is None:          # the process is mlplab's own (the console script)
        warnings.showwarning = _show_warning
        for sig in (signal.SIGINT, signal.SIGTERM):    # both end work as Ctrl-C does
            signal.signal(sig, _interrupt)
        commands.OWN_PROCESS[0] = True

    try:
        code = commands.COMMANDS[args.command](args)
        sys.stdout.flush()      # a closed pipe (mlplab runs DIR | head) shows here, not at exit
        return code
    except BrokenPipeError:     # the reader has gone: nothing left to say, and no one to say it to
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ConfigError, StoreError) as e:
        print(f"mlplab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        extra = {"dash": "dashboard", "plotly": "dashboard", "ray": "ray", "optuna": "optuna",
                 "tensorboard": "tensorboard", "mlflow": "mlflow"}.get(
            (e.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"mlplab {args.command}: error: this needs the optional package '{e.name}';"
              f" install it with: pip install 'mlplab[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"mlplab {args.command}: interrupted", file=sys.stderr)
        return 128 + (e.signum if isinstance(e, Interrupted) else signal.SIGINT)
    except Exception as e:  # a failure, not a user mistake: say what broke, briefly
        print(f"mlplab {args.command}: failed: {type(e).__name__}: {e}", file=sys.stderr)
        if "MLPLAB_DEBUG" in __import__("os").environ:
            raise
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
