"""Runs `python -m MODULE ARGS` commands one after another in this one process, for the tests.

Why: every `python -m harness` pays ~7 s of imports (torch, torchvision, Hydra) before it reads its first
argument; the test suite runs such commands about a hundred times. This process imports once, then for each
request runs the module as `python -m` would (``runpy.run_module(..., run_name="__main__")``, ``sys.argv``
set, in the request's folder and environment), catches its exit code, and answers with what it printed.

Between commands it puts back what a command changes in the process: the folder, the environment,
``sys.argv``, ``sys.path`` (the command's folder comes first, as with `python -m`), modules imported from
that folder, Hydra's global state, the root logger's handlers and level (each command configures logging
afresh, as in a new process). What a module keeps in memory on purpose (caches of pure functions) stays.
Tests that need a process of their own (signals, SLURM jobs, timing of start-up) use ``fresh=True``.

Protocol: one JSON request per line on stdin ({"module", "args", "cwd", "env"}), one JSON answer per line
({"returncode", "stdout", "stderr"}) on the file descriptor given as the first argument, so that nothing a
command prints, or a child process it starts, can mix with the answers.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import runpy
import sys
import traceback
import warnings
from typing import Any


def _exit_code(code: Any, err: io.StringIO) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=err)
    return 1


def _reset_logging() -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        with contextlib.suppress(Exception):
            handler.close()
    root.setLevel(logging.WARNING)
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.disabled = False


def _forget_modules_from(folder: str, before: set[str]) -> None:
    """Modules imported from the command's folder (a user's model factory): the next command, in another
    folder, must import its own file of that name, as a new process would."""
    root = os.path.realpath(folder) + os.sep
    for name in set(sys.modules) - before:
        path = getattr(sys.modules[name], "__file__", None)
        if path and os.path.realpath(path).startswith(root):
            del sys.modules[name]


def run(request: dict[str, Any]) -> dict[str, Any]:
    from hydra.core.global_hydra import GlobalHydra

    saved_env, saved_cwd, saved_argv, saved_path = dict(os.environ), os.getcwd(), sys.argv, list(sys.path)
    saved_modules = set(sys.modules)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        os.environ.update(request.get("env") or {})
        os.chdir(request["cwd"])
        sys.path.insert(0, request["cwd"])  # as `python -m` puts the folder it starts in first
        sys.argv = [request["module"], *request["args"]]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            # runpy warns when the module was imported before (by an earlier command in this process); a new
            # `python -m` imports it once, so this warning is the driver's, not the command's
            warnings.filterwarnings("ignore", r".* found in sys\.modules after import of package", RuntimeWarning)
            try:
                runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            except SystemExit as e:
                code = _exit_code(e.code, err)
            except BaseException:  # noqa: BLE001 - as the interpreter would: traceback on stderr, exit 1
                traceback.print_exc(file=err)
                code = 1
    finally:
        GlobalHydra.instance().clear()
        _reset_logging()
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
        sys.path[:] = saved_path
        _forget_modules_from(request["cwd"], saved_modules)
    return {"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def main() -> None:
    answers = os.fdopen(int(sys.argv[1]), "w")
    # What the commands (or their children) write to the real stdout must not reach the answers' pipe.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    import hydra  # noqa: F401

    import harness.launch.dispatch  # noqa: F401 - the imports every command shares, paid once

    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in sys.stdin:
        answers.write(json.dumps(run(json.loads(line))) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
