"""Run `resnet-course` as a learner would, fast: each command in a process forked from a server that has already imported it.

Importing fastai takes 10-40 s on a 2-core machine, and the tests run about a hundred commands. So each command runs in
a new process forked from one server process that has only imported the command's modules (no torch operation, no
fastai config read, checked). The fork runs the command's own entry point (the console script, or `-m module`) with
the command's arguments, environment, working folder, standard streams, default Ctrl-C handling and exit code: the same
code path as a fresh process, less the imports. `RESNET_COURSE_FORK=0` runs plain subprocesses instead (the same
assertions; far slower).

The command is `$RESNET_COURSE_CLI`, by default the installed `resnet-course`. To measure other code, e.g. an older
commit checked out in /tmp/old: `RESNET_COURSE_CLI="PYTHONPATH=/tmp/old /work/main/.venv/bin/python -m resnet_course.cli"`.
"""
import io, json, os, re, shlex, signal, subprocess, sys, tempfile, threading, time
from dataclasses import dataclass
from pathlib import Path

CLI = os.environ.get('RESNET_COURSE_CLI') or str(Path(sys.executable).parent/'resnet-course')
FORK = os.environ.get('RESNET_COURSE_FORK', '1') != '0'
RUN_TIMEOUT = 300          # any command

# ----------------------------------------------------------------------------------------------------------------
# Running the command

def parse_cli(cmd:str):
    "Environment, interpreter, entry point and leading arguments of a command such as `X=1 python -m mod` or `resnet-course`"
    words = shlex.split(cmd)
    if words and words[0] == 'env': words = words[1:]
    env = {}
    while words and re.fullmatch(r'[A-Za-z_]\w*=.*', words[0]):
        k, v = words.pop(0).split('=', 1); env[k] = v
    if len(words) >= 3 and words[1] == '-m':
        return env, words, words[0], dict(kind='module', module=words[2], preload=[words[2]]), words[3:]
    script = Path(words[0])
    text = script.read_text(errors='replace') if script.is_file() else ''
    if text.startswith('#!') and 'python' in text.splitlines()[0]:
        preload = re.findall(r'^from (\S+) import', text, re.M)
        return env, words, text.splitlines()[0][2:].strip(), dict(kind='script', path=str(script), preload=preload), words[1:]
    return env, words, None, None, words[1:]

CLI_ENV, CLI_WORDS, PYTHON, ENTRY, CLI_PREFIX = parse_cli(CLI)

SERVER = r'''
import importlib, io, json, os, resource, runpy, select, signal, sys, time, traceback
how = json.loads(sys.argv[1])
sys.path[:] = [p for p in sys.path if p not in ('', os.getcwd())]
for m in how['preload']: importlib.import_module(m)
info = {}
try:
    import resnet_course; info['resnet_course'] = resnet_course.__file__
    from fastai.data.external import fastai_cfg; info['fastai_cfg_read'] = fastai_cfg.cache_info().currsize
except Exception as e: info['error'] = repr(e)
out_fd = os.dup(1); os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
def reply(obj): os.write(out_fd, (json.dumps(obj) + '\n').encode())

def child(req):
    code = 0
    try:
        os.close(out_fd); signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)   # Ctrl-C as in a terminal, though pytest-xdist's workers ignore it
        os.chdir(req['cwd']); os.environ.clear(); os.environ.update(req['env'])
        if req.get('extra_memory'):
            vsz = int(open('/proc/self/statm').read().split()[0]) * os.sysconf('SC_PAGE_SIZE')
            resource.setrlimit(resource.RLIMIT_AS, (vsz + req['extra_memory'],) * 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, name in ((1, 'stdout'), (2, 'stderr')):
            f = os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644); os.dup2(f, fd); os.close(f)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, 'r', closefd=False))
        sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.FileIO(1, 'w', closefd=False), write_through=True, line_buffering=True)
        sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, 'w', closefd=False), write_through=True, line_buffering=True, errors='backslashreplace')
        if req.get('code') is not None:
            sys.argv = ['-c']; exec(compile(req['code'], '<case>', 'exec'), {'__name__': '__main__'})
        elif how['kind'] == 'script':
            sys.argv = [how['path'], *req['args']]; runpy.run_path(how['path'], run_name='__main__')
        else:
            sys.argv = [how['module'], *req['args']]; runpy.run_module(how['module'], run_name='__main__', alter_sys=True)
    except SystemExit as e:
        code = e.code
        if code is None: code = 0
        elif not isinstance(code, int): print(code, file=sys.stderr); code = 1
    except BaseException:
        traceback.print_exc(); code = 1
    try: sys.stdout.flush(); sys.stderr.flush()
    except BaseException: pass
    os._exit(code & 0xff)

running = {}
def reap():
    while running:
        try: pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError: return
        if pid == 0: return
        job = running.pop(pid, None)
        if job is None: continue
        with open(job['rc'] + '.tmp', 'w') as f:
            json.dump({'rc': os.waitstatus_to_exitcode(status), 'seconds': time.monotonic() - job['t0']}, f)
        os.replace(job['rc'] + '.tmp', job['rc'])

reply({'ready': True, **info})
buf = b''
while True:
    ready, _, _ = select.select([0], [], [], 0.02)
    reap()
    if not ready: continue
    chunk = os.read(0, 1 << 16)
    if not chunk: break
    buf += chunk
    while b'\n' in buf:
        line, buf = buf.split(b'\n', 1)
        req = json.loads(line)
        if req['op'] == 'run':
            t0 = time.monotonic(); pid = os.fork()
            if pid == 0: child(req)
            running[pid] = {'rc': req['rc'], 't0': t0}
            reply({'pid': pid})
        elif req['op'] == 'kill':
            reap(); hit = req['pid'] in running
            if hit: os.kill(req['pid'], req.get('sig', signal.SIGKILL))
            reply({'killed': hit})
for pid in list(running): os.kill(pid, signal.SIGKILL)
'''

class ForkServer:
    "A process that has imported the command's modules, and forks a child per command"
    def __init__(self, folder:Path, env:dict):
        self.log = folder/'server.log'
        self.proc = subprocess.Popen([PYTHON, '-c', SERVER, json.dumps(ENTRY)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(self.log, 'w'), env=env, cwd=folder)
        self.lock, self._hello = threading.Lock(), None

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line: raise RuntimeError(f'the fork server died:\n{self.log.read_text()[-3000:]}')
        return json.loads(line)

    @property
    def hello(self) -> dict:
        with self.lock:
            if self._hello is None:
                self._hello = self._read()
                # a child must start as a fresh process would: FASTAI_HOME, for one, is read when first needed, not at import
                assert 'error' not in self._hello and self._hello.get('fastai_cfg_read') == 0, f'the fork server is not a clean start: {self._hello}'
            return self._hello

    def request(self, req:dict) -> dict:
        self.hello
        with self.lock:
            self.proc.stdin.write((json.dumps(req) + '\n').encode()); self.proc.stdin.flush()
            return self._read()

    def close(self):
        try: self.proc.stdin.close()
        except OSError: pass
        try: self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()

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

class Proc:
    "One command, running"
    def __init__(self, runner, argv:list, env:dict, cwd:Path, code:str=None, extra_memory:int=None):
        self.runner, self.argv, self.code = runner, argv, code
        self.dir = Path(tempfile.mkdtemp(dir=runner.logs))
        self.out, self.err, self.rcfile = self.dir/'stdout', self.dir/'stderr', self.dir/'rc'
        self.t0 = time.monotonic()
        if runner.server:
            self.popen = None
            self.pid = runner.server.request(dict(op='run', args=[*CLI_PREFIX, *argv], code=code, env=env, cwd=str(cwd),
                                                  stdout=str(self.out), stderr=str(self.err), rc=str(self.rcfile),
                                                  extra_memory=extra_memory))['pid']
        else:
            cmd = [PYTHON or sys.executable, '-c', code] if code is not None else [*CLI_WORDS, *argv]   # env holds CLI_ENV
            def limit():
                signal.signal(signal.SIGINT, signal.SIG_DFL)   # Python then installs its Ctrl-C handler, as in a terminal
                if extra_memory:
                    import resource; resource.setrlimit(resource.RLIMIT_AS, (extra_memory + (6 << 30),) * 2)
            self.popen = subprocess.Popen(cmd,
                                          stdin=subprocess.DEVNULL, stdout=open(self.out, 'w'), stderr=open(self.err, 'w'),
                                          env=env, cwd=cwd, preexec_fn=limit)
            self.pid = self.popen.pid

    def done(self) -> bool:
        return self.rcfile.exists() if self.popen is None else self.popen.poll() is not None

    def stdout_so_far(self) -> str: return self.out.read_text(errors='replace') if self.out.exists() else ''

    def kill(self, sig:int=signal.SIGKILL) -> bool:
        "Send `sig` (SIGKILL unless told) to the command if it is still running (only our own child: the server checks it has not reaped it)"
        if self.popen is None: return self.runner.server.request(dict(op='kill', pid=self.pid, sig=int(sig)))['killed']
        if self.popen.poll() is None: self.popen.send_signal(sig); return True
        return False

    def interrupt(self) -> bool: return self.kill(signal.SIGINT)

    def wait(self, timeout:float=RUN_TIMEOUT) -> Result:
        deadline = time.monotonic() + timeout
        while not self.done():
            if time.monotonic() > deadline:
                self.kill()
                while not self.done(): time.sleep(0.05)
                r = self._result()
                raise AssertionError(f'still running after {timeout} s, so it was stopped:{r}')
            time.sleep(0.05)
        return self._result()

    def _result(self) -> Result:
        if self.popen is None:
            st = json.loads(self.rcfile.read_text()); rc, secs = st['rc'], st['seconds']
        else: rc, secs = self.popen.returncode, time.monotonic() - self.t0
        read = lambda p: p.read_text(errors='replace') if p.exists() else ''
        return Result(['python', '-c', '<code>'] if self.code is not None else ['resnet-course', *self.argv], rc, read(self.out), read(self.err), secs)


class Runner:
    "Runs commands in `env` (each request may add to it), logging their output under `root/logs`"
    def __init__(self, root:Path, env:dict, fork:bool=FORK):
        self.root, self.env = Path(root), dict(env, **CLI_ENV)
        self.logs = self.root/'logs'; self.logs.mkdir(parents=True, exist_ok=True)
        self.server = ForkServer(self.root, self.env) if fork and ENTRY else None   # starts importing now

    def start(self, argv, env:dict=None, cwd:Path=None, code:str=None, extra_memory:int=None) -> Proc:
        return Proc(self, [str(a) for a in argv], {**self.env, **(env or {})}, cwd or self.root, code, extra_memory)

    def cli(self, argv, timeout=RUN_TIMEOUT, **kw) -> Result: return self.start(argv, **kw).wait(timeout)

    def python(self, code:str, timeout=RUN_TIMEOUT, **kw) -> Result: return self.start([], code=code, **kw).wait(timeout)

    def close(self):
        if self.server: self.server.close()
