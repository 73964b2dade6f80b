"""Run `resnet-course` as a learner would, in the test's own process where a process is not the point.

`Runner.cli(argv)` calls the command's entry point in this process, through its console script (`resnet-course`, which
calls `resnet_course.cli.main` with `sys.argv`), with the command's own environment, working folder, captured output
and exit code, and the caches a fresh process would not have (fastai's config, the course's printed-once notices)
cleared. `Runner.start(argv)` and `Runner.python(code)` run in a child process of their own, for what needs one: Ctrl-C,
SIGKILL, a memory limit, code that calls `sys.exit`, DataLoader workers to find.

A child is never forked from this process: once torch has run a parallel op here, libgomp's team of threads exists, a
fork copies only the calling thread, and a child that then runs a parallel op waits at the team's barrier for ever (the
first test in tests/test_harness.py hung so with a runner that forked). A fresh interpreter per command would spend
seconds importing fastai. So each child is forked from multiprocessing's fork server: an interpreter started once per
pytest process, which has imported `PRELOAD` and run nothing else (one thread, checked in test_harness.py). The child
takes the command's folder, environment, streams and Ctrl-C handling, in a session of its own, and runs the same entry
point as `Runner.cli`. What a library read from the environment when the server imported it stays as the server read
it, except torch's thread count, which the child sets from the command's environment. A child still running when its
test ends (conftest's `no_child_outlives_its_test`), or whose wait times out, is killed with every process in its session.
"""
import atexit, contextlib, functools, io, os, resource, runpy, signal, subprocess, sys, time, traceback, warnings
import multiprocessing as mp
from multiprocessing import forkserver
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

# ----------------------------------------------------------------------------------------------------------------
# Child processes

PRELOAD = ['fastai.vision.all', 'resnet_course.cli', 'resnet_course.reproduce', 'resnet_course.figures', 'resnet_course.bench', 'resnet_course.fast',
           'resnet_course.goals', 'resnet_course.cache', 'timm']   # what the commands and the tests' child code import: seconds each child need not spend
SERVER_ENV = {'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}   # so that the server's libraries start no pools of threads
THREAD_VARS = ('MKL_NUM_THREADS', 'OMP_NUM_THREADS')            # torch's thread count: the first set of these, as torch reads them
FORKSERVER = mp.get_context('forkserver')
FORKSERVER.set_forkserver_preload(PRELOAD)                      # before the server starts (once per process, for every user of the context)

@contextlib.contextmanager
def _environ(env:dict):
    "This process's environment is `env` in the block"
    saved = dict(os.environ)
    os.environ.clear(); os.environ.update(env)
    try: yield
    finally: os.environ.clear(); os.environ.update(saved)

def server_pid() -> int:
    """The fork server's process id; it is started if it is not running, with `SERVER_ENV` in its environment and SIGINT
    ignored, as a pytest-xdist worker would start it: so every child must, and does, set its own Ctrl-C handling"""
    sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _environ({**os.environ, **SERVER_ENV}): forkserver.ensure_running()
    finally: signal.signal(signal.SIGINT, sigint)
    return forkserver._forkserver._forkserver_pid

@functools.cache
def _default_threads() -> int:
    "torch's thread count in a fresh process whose environment sets none, asked of one such process"
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    r = subprocess.run([sys.executable, '-c', 'import torch; print(torch.get_num_threads())'], env=env, capture_output=True, text=True, timeout=300)
    return int(r.stdout.split()[-1])

def _threads(env:dict) -> int:
    "The number of torch threads a fresh process with the environment `env` has"
    for k in THREAD_VARS:
        with contextlib.suppress(KeyError, ValueError):
            if int(env[k]) > 0: return int(env[k])
    return _default_threads()

def threads_of_this_process() -> dict:
    "The environment that gives a child this process's torch thread count: for a child whose numbers are compared with a run in this process"
    import torch
    return dict.fromkeys(THREAD_VARS, str(torch.get_num_threads()))

def _child(argv, code, env, cwd, out, err, extra_memory, threads):
    "The body of a command in a child of the fork server: its session, signals, folder, environment, threads and streams, then the entry point; never returns"
    rc = 1
    try:
        os.setsid()                                                # a session and process group of its own, killed whole by `Proc.stop`
        signal.signal(signal.SIGINT, signal.default_int_handler)   # Ctrl-C as in a terminal, though the server and pytest-xdist's workers ignore it
        mp.set_start_method(None, force=True)                      # a fresh process's default (its DataLoader workers fork from it), not the server's
        os.chdir(cwd); os.environ.clear(); os.environ.update(env); _fresh_state()
        import torch; torch.set_num_threads(threads)               # OpenMP and MKL read their environment when the server imported torch
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, path in ((1, out), (2, err)):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644); os.dup2(f, fd); os.close(f)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, 'r', closefd=False))
        sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.FileIO(1, 'w', closefd=False), write_through=True, line_buffering=True)
        sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, 'w', closefd=False), write_through=True, line_buffering=True, errors='backslashreplace')
        with _memory_limit(extra_memory): rc = _entry(argv, code)
        sys.stdout.flush(); sys.stderr.flush()
    finally: os._exit(rc & 0xff)

_STARTED = []   # every `Proc` not yet stopped: `stop_all` kills whatever of them still runs

class Proc:
    "One command running in a child of the fork server, in a session of its own"
    def __init__(self, runner, argv:list, env:dict, cwd:Path, code:str=None, extra_memory:int=None, start_timeout:float=RUN_TIMEOUT):
        self.runner, self.argv, self.code = runner, argv, code
        d = Path(runner.logs)/f'{time.monotonic_ns()}'; d.mkdir(parents=True)
        self.out, self.err = d/'stdout', d/'stderr'
        args = (argv, code, env, str(cwd), str(self.out), str(self.err), extra_memory, _threads(env))
        server_pid()
        self.t0 = time.monotonic()
        self.process = FORKSERVER.Process(target=_child, args=args)
        self.process.start()
        self.pid = self.process.pid
        _STARTED.append(self)
        while not self.err.exists() and not self.done():   # the command begins once its streams are open
            if time.monotonic() - self.t0 > start_timeout: self.stop(); raise AssertionError(f'not started after {start_timeout} s:{self._result()}')
            time.sleep(0.005)
        self.t0 = time.monotonic()

    def done(self) -> bool: return self.process.exitcode is not None

    def stdout_so_far(self) -> str: return self.out.read_text(errors='replace') if self.out.exists() else ''

    def kill(self, sig:int=signal.SIGKILL) -> bool:
        "Send `sig` (SIGKILL unless told) to the command's process, not to the processes it started, if it is still running"
        if self.done(): return False
        try: os.kill(self.pid, sig); return True
        except ProcessLookupError: return False   # it ended just now: the fork server reaps its children at once

    def interrupt(self) -> bool: return self.kill(signal.SIGINT)

    def stop(self):
        "SIGKILL the command and every process left in its session (DataLoader workers, say), and wait for the command"
        with contextlib.suppress(ProcessLookupError, PermissionError): os.killpg(self.pid, signal.SIGKILL)
        self.kill()   # and the command itself, should it not have got as far as a session of its own
        self.process.join(60)
        if self in _STARTED: _STARTED.remove(self)

    def wait(self, timeout:float=RUN_TIMEOUT) -> Result:
        self.process.join(timeout)
        if not self.done():
            self.stop()
            raise AssertionError(f'still running after {timeout} s, so it was killed with its session:{self._result()}')
        return self._result()

    def _result(self) -> Result:
        read = lambda p: p.read_text(errors='replace') if p.exists() else ''
        argv = ['python', '-c', '<code>'] if self.code is not None else ['resnet-course', *self.argv]
        return Result(argv, self.process.exitcode, read(self.out), read(self.err), time.monotonic() - self.t0)

def stop_all():
    "Stop every command started here and not stopped yet, with its session: at the end of each test (conftest) and of this process"
    for p in list(_STARTED): p.stop()

atexit.register(stop_all)   # registered after multiprocessing's own exit handler, so run before it joins the children

def _warning_to_stderr(msg):
    "Print a warning as Python does in a process of its own, to the (redirected) stderr"
    sys.stderr.write(warnings.formatwarning(msg.message, msg.category, msg.filename, msg.lineno, msg.line))

class Runner:
    "Runs commands in `env` (each call may add to it), in this process or a child of the fork server, logging a child's output under `root/logs`"
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
        "Start the command (or the Python `code`) in a child process; it is stopped at the latest when the test ends"
        return Proc(self, [str(a) for a in argv], {**self.env, **(env or {})}, cwd or self.root, code, extra_memory)

    def python(self, code:str, timeout=RUN_TIMEOUT, **kw) -> Result:
        "Run the Python `code` in a child process, as `python -c` would"
        return self.start([], code=code, **kw).wait(timeout)

    def close(self):
        "Stop every command this runner started that still runs, with its session"
        for p in [p for p in _STARTED if p.runner is self]: p.stop()
