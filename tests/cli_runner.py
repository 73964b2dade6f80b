"""Run `resnet-course` as a learner would, in the test's own process where a process is not the point.

`Runner.cli(argv)` calls the command's entry point in this process, through its console script (`resnet-course`, which
calls `resnet_course.cli.main` with `sys.argv`), with the command's own environment, working folder, captured output
and exit code, and the caches a fresh process would not have (fastai's config, the course's printed-once notices)
cleared. `Runner.start(argv)` and `Runner.python(code)` run in a child process forked from this one, for what needs a
process of its own: Ctrl-C, SIGKILL, a memory limit, code that calls `sys.exit`, DataLoader workers to find.
"""
import contextlib, io, os, resource, runpy, signal, sys, time, traceback, warnings
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(sys.executable).parent/'resnet-course'   # the console script a learner runs
RUN_TIMEOUT = 300                                      # seconds any command may take

@dataclass
class Result:
    "What a finished command left: exit code, output, seconds"
    argv:list; rc:int; stdout:str; stderr:str; seconds:float
    @property
    def output(self) -> str: return self.stdout + self.stderr
    @property
    def returncode(self) -> int: return self.rc
    def __str__(self):
        return (f"\n$ {' '.join(map(str, self.argv))}\nexit code {self.rc} after {self.seconds:.1f} s\n"
                f"--- stdout (end) ---\n{self.stdout[-3000:]}\n--- stderr (end) ---\n{self.stderr[-3000:]}")

def _fresh_state():
    "Forget what a new process would not know yet: fastai's config (read from FASTAI_HOME) and the notices printed once"
    from fastai.data.external import fastai_cfg
    from resnet_course import machine
    fastai_cfg.cache_clear(); machine._noticed.clear()

def _entry(argv:list, code:str=None) -> int:
    "Run the command line with `argv` (or the Python `code`) as `__main__`; its exit code"
    try:
        if code is not None: sys.argv = ['-c']; exec(compile(code, '<test>', 'exec'), {'__name__': '__main__'})
        else: sys.argv = [str(SCRIPT), *argv]; runpy.run_path(str(SCRIPT), run_name='__main__')
    except SystemExit as e:
        if e.code is None: return 0
        if isinstance(e.code, int): return e.code
        print(e.code, file=sys.stderr); return 1
    except BaseException:
        traceback.print_exc(); return 1
    return 0

@contextlib.contextmanager
def _memory_limit(extra:int=None):
    "Let the block allocate at most `extra` more bytes of address space (a soft limit, put back afterwards)"
    if not extra: yield; return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    vsz = int(Path('/proc/self/statm').read_text().split()[0]) * os.sysconf('SC_PAGE_SIZE')
    resource.setrlimit(resource.RLIMIT_AS, (min(vsz + extra, hard) if hard != resource.RLIM_INFINITY else vsz + extra, hard))
    try: yield
    finally: resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

def _child(argv, code, env, cwd, out, err, extra_memory):
    "The body of a forked command: its signals, folder, environment and streams, then the entry point; never returns"
    rc = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)   # Ctrl-C as in a terminal, though pytest-xdist's workers ignore it
        os.chdir(cwd); os.environ.clear(); os.environ.update(env); _fresh_state()
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, path in ((1, out), (2, err)):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644); os.dup2(f, fd); os.close(f)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, 'r', closefd=False))
        sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.FileIO(1, 'w', closefd=False), write_through=True, line_buffering=True)
        sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, 'w', closefd=False), write_through=True, line_buffering=True, errors='backslashreplace')
        with _memory_limit(extra_memory): rc = _entry(argv, code)
        sys.stdout.flush(); sys.stderr.flush()
    finally: os._exit(rc & 0xff)

class Proc:
    "One command running in a child process forked from this one"
    def __init__(self, runner, argv:list, env:dict, cwd:Path, code:str=None, extra_memory:int=None):
        self.argv, self.code = argv, code
        d = Path(runner.logs)/f'{time.monotonic_ns()}'; d.mkdir(parents=True)
        self.out, self.err = d/'stdout', d/'stderr'
        self.t0 = time.monotonic()
        self.process = mp.get_context('fork').Process(target=_child, args=(argv, code, env, str(cwd), str(self.out), str(self.err), extra_memory))
        self.process.start()
        self.pid = self.process.pid

    def done(self) -> bool: return self.process.exitcode is not None

    def stdout_so_far(self) -> str: return self.out.read_text(errors='replace') if self.out.exists() else ''

    def kill(self, sig:int=signal.SIGKILL) -> bool:
        "Send `sig` (SIGKILL unless told) to the command if it is still running"
        if self.done(): return False
        os.kill(self.pid, sig); return True

    def interrupt(self) -> bool: return self.kill(signal.SIGINT)

    def wait(self, timeout:float=RUN_TIMEOUT) -> Result:
        self.process.join(timeout)
        if not self.done():
            self.kill(); self.process.join()
            raise AssertionError(f'still running after {timeout} s, so it was stopped:{self._result()}')
        return self._result()

    def _result(self) -> Result:
        read = lambda p: p.read_text(errors='replace') if p.exists() else ''
        argv = ['python', '-c', '<code>'] if self.code is not None else ['resnet-course', *self.argv]
        return Result(argv, self.process.exitcode, read(self.out), read(self.err), time.monotonic() - self.t0)

def _warning_to_stderr(msg):
    "Print a warning as Python does in a process of its own, to the (redirected) stderr"
    sys.stderr.write(warnings.formatwarning(msg.message, msg.category, msg.filename, msg.lineno, msg.line))

class Runner:
    "Runs commands in `env` (each call may add to it), in this process or a forked child, logging forked output under `root/logs`"
    def __init__(self, root:Path, env:dict):
        self.root, self.env = Path(root), dict(env)
        self.logs = self.root/'logs'; self.logs.mkdir(parents=True, exist_ok=True)

    def cli(self, argv, env:dict=None, cwd:Path=None, timeout=RUN_TIMEOUT, extra_memory:int=None) -> Result:
        "Run the command with `argv` in this process, as a fresh process would; `timeout` is checked afterwards"
        argv = [str(a) for a in argv]
        saved = dict(os.environ), os.getcwd(), sys.argv
        out, err = io.StringIO(), io.StringIO()
        t0 = time.monotonic()
        try:
            os.environ.clear(); os.environ.update({**self.env, **(env or {})}); os.chdir(cwd or self.root); _fresh_state()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings(), _memory_limit(extra_memory):
                warnings.simplefilter('default')              # each warning shown as a new process would show it
                warnings._showwarnmsg_impl = _warning_to_stderr   # to the command's stderr, not to pytest's record (restored on exit)
                rc = _entry(argv)
        finally:
            os.environ.clear(); os.environ.update(saved[0]); os.chdir(saved[1]); sys.argv = saved[2]; _fresh_state()
            import matplotlib.pyplot as plt; plt.close('all')
        r = Result(['resnet-course', *argv], rc, out.getvalue(), err.getvalue(), time.monotonic() - t0)
        assert r.seconds <= timeout, f'took {r.seconds:.0f} s, more than {timeout} s:{r}'
        return r

    def start(self, argv, env:dict=None, cwd:Path=None, code:str=None, extra_memory:int=None) -> Proc:
        "Start the command (or the Python `code`) in a forked child process"
        return Proc(self, [str(a) for a in argv], {**self.env, **(env or {})}, cwd or self.root, code, extra_memory)

    def python(self, code:str, timeout=RUN_TIMEOUT, **kw) -> Result:
        "Run the Python `code` in a forked child process, as `python -c` would"
        return self.start([], code=code, **kw).wait(timeout)

    def close(self): pass
