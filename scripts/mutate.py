#!/usr/bin/env python3
# @file scripts/mutate.py @brief `make mutate`: applies the known mutations of scripts/mutations.toml to a copy of the CUDA sources one at a time and reports which emulated test catches each.
"""Mutation testing of the CUDA sources against the emulated tests (docs/emulator.md, "Mutation testing").

The repository's files (git ls-files of the working tree) are copied to a scratch directory, one
emulated-only build is configured and built there, and the unmutated emulated test runs are timed.
Then, for each mutation: apply it to the copy, rebuild ember_tests and ember_emulator_tests
incrementally, run the emulated tests (ember_tests "[cuda]" under the forward, reverse and random
emulator schedules, ember_tests "[nccl]" with 3 emulated devices, then ember_emulator_tests), each
with a time limit of a few times its unmutated run, and restore the file. A mutant is caught by the test cases that failed, by a timeout, or missed;
a mutant whose pattern no longer matches once is stale, one that does not compile is "build failed".
Prints a Markdown table and a score line. Python 3.11+, standard library only.
"""
import argparse
import dataclasses
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

try:
    import tomllib
except ImportError:  # Python < 3.11
    sys.exit("mutate.py: error: needs Python 3.11 or newer (tomllib reads scripts/mutations.toml)")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_LIST = os.path.join(REPO, "scripts", "mutations.toml")
CMAKE_ARGS = ["-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DEMBER_CUDA=OFF", "-DEMBER_BUILD_BENCHMARKS=OFF"]
TARGETS = ["ember_tests", "ember_emulator_tests"]
MIN_TIMEOUT_S = 10.0  # floor of a run's CPU-time limit: start-up noise on a loaded machine
WALL_FACTOR = 2.0  # wall-clock limit: this times the larger of the CPU limit and factor x the unmutated wall time


def fail(msg):
    print(f"mutate.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def note(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- the list

class Stale(Exception):
    """The mutation's pattern does not identify exactly one place in its file."""


@dataclasses.dataclass
class Mutation:
    id: str
    file: str
    description: str
    replace: str
    pattern: str | None = None  # literal text
    regex: str | None = None  # or a regular expression
    occurrence: int | None = None  # 1-based; None: the pattern must match exactly once

    def locate(self, text):
        """Returns (start, end, replacement text) of the match to replace; raises Stale."""
        if self.regex is not None:
            matches = [(m.start(), m.end(), m.expand(self.replace)) for m in re.finditer(self.regex, text, re.MULTILINE)]
        else:
            matches, at = [], text.find(self.pattern)
            while at >= 0:
                matches.append((at, at + len(self.pattern), self.replace))
                at = text.find(self.pattern, at + 1)
        if self.occurrence is None:
            if len(matches) != 1:
                raise Stale(f"the pattern matches {len(matches)} times, not once")
            return matches[0]
        if self.occurrence > len(matches):
            raise Stale(f"occurrence {self.occurrence} asked for, the pattern matches {len(matches)} times")
        return matches[self.occurrence - 1]

    def apply(self, text):
        """Returns (mutated text, 1-based line of the first changed character); raises Stale."""
        start, end, new = self.locate(text)
        if text[start:end] == new:
            raise Stale("the replacement equals the matched text")
        same = 0
        while same < min(end - start, len(new)) and text[start + same] == new[same]:
            same += 1
        return text[:start] + new + text[end:], text.count("\n", 0, start + same) + 1


def load_mutations(path):
    """Parses and validates the mutation list (scripts/mutations.toml)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        fail(f"cannot read the mutation list {path}: {e}")
    fields = {f.name for f in dataclasses.fields(Mutation)}
    out, seen = [], set()
    for i, entry in enumerate(data.get("mutation", [])):
        where = f"{path}: mutation #{i + 1} ({entry.get('id', 'no id')})"
        unknown = set(entry) - fields
        if unknown:
            fail(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        for key in ("id", "file", "description", "replace"):
            if not isinstance(entry.get(key), str):
                fail(f"{where}: `{key}` must be a string")
        if ("pattern" in entry) == ("regex" in entry):
            fail(f"{where}: give exactly one of `pattern` and `regex`")
        if "regex" in entry:
            try:
                re.compile(entry["regex"], re.MULTILINE)
            except re.error as e:
                fail(f"{where}: bad regex: {e}")
        occ = entry.get("occurrence")
        if occ is not None and (not isinstance(occ, int) or occ < 1):
            fail(f"{where}: `occurrence` must be a positive integer (1 = the first match)")
        if entry["id"] in seen:
            fail(f"{where}: duplicate id {entry['id']}")
        seen.add(entry["id"])
        out.append(Mutation(**entry))
    if not out:
        fail(f"{path} lists no [[mutation]]")
    return out


def select(mutations, only):
    """The mutations named by --only (comma-separated ids), in list order; all without it."""
    if not only:
        return mutations
    wanted = [s.strip() for s in only.split(",") if s.strip()]
    known = {m.id for m in mutations}
    missing = [w for w in wanted if w not in known]
    if missing:
        fail(f"--only: unknown mutation id(s) {', '.join(missing)} (see --list)")
    return [m for m in mutations if m.id in wanted]


# ---------------------------------------------------------------------------------------- the copy

def repo_files():
    """Files of the working tree that git tracks or would track (untracked, not ignored), minus deleted ones."""
    out = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout
    files = sorted({p for p in out.decode().split("\0") if p})
    return [p for p in files if os.path.lexists(os.path.join(REPO, p))]


def sync_tree(dst):
    """Makes dst a copy of the repository's files, rewriting only files whose content differs (so an
    existing build there stays incremental) and deleting files a previous sync copied that are gone."""
    manifest = os.path.join(dst, ".mutate-manifest")
    src_dir = os.path.join(dst, "src")
    files = repo_files()
    old = []
    if os.path.exists(manifest):
        with open(manifest, encoding="utf-8") as f:
            old = f.read().split("\0")
    for gone in set(old) - set(files) - {""}:
        path = os.path.join(src_dir, gone)
        if os.path.lexists(path):
            os.remove(path)
    changed = 0
    for rel in files:
        src, out = os.path.join(REPO, rel), os.path.join(src_dir, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if os.path.islink(src):
            target = os.readlink(src)
            if not (os.path.islink(out) and os.readlink(out) == target):
                if os.path.lexists(out):
                    os.remove(out)
                os.symlink(target, out)
            continue
        with open(src, "rb") as f:
            data = f.read()
        if os.path.isfile(out) and not os.path.islink(out):
            with open(out, "rb") as f:
                if f.read() == data:
                    continue
        elif os.path.lexists(out):
            os.remove(out)
        write_file(out, data)  # a fresh mtime: ninja rebuilds what depends on it
        shutil.copymode(src, out)
        changed += 1
    write_file(manifest, "\0".join(files).encode())
    return src_dir, changed


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_file(path, data):
    """Writes bytes atomically (temporary file in the same folder, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600 is for secrets, not for results
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ---------------------------------------------------------------------------------------- build

def configure(src_dir, build_dir, log):
    """Configures the emulated-only build once (a build directory that has one is reused as it is)."""
    if os.path.exists(os.path.join(build_dir, "build.ninja")):
        return True
    with open(log, "w", encoding="utf-8") as f:
        r = subprocess.run(["cmake", "-S", src_dir, "-B", build_dir, *CMAKE_ARGS], stdout=f, stderr=subprocess.STDOUT)
    return r.returncode == 0


def build(build_dir, jobs, log):
    """Builds the emulated test binaries; True on success (the log keeps ninja's output)."""
    with open(log, "w", encoding="utf-8") as f:
        r = subprocess.run(["ninja", "-C", build_dir, f"-j{jobs}", *TARGETS], stdout=f, stderr=subprocess.STDOUT)
    return r.returncode == 0


def compiled_files(build_dir):
    """Every file the build's objects were compiled from (sources and the headers and .cu files they
    include), as absolute paths, from ninja's dependency log."""
    r = subprocess.run(["ninja", "-C", build_dir, "-t", "deps"], capture_output=True, text=True, check=True)
    return {os.path.normpath(os.path.join(build_dir, line.strip()))
            for line in r.stdout.splitlines() if line.startswith((" ", "\t")) and line.strip()}


def first_error(log):
    """The compiler's first error line in a build log, shortened."""
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            if "error:" in line:
                text = line.strip().split("error:", 1)[1].strip()
                return text if len(text) <= 100 else text[:97] + "..."
    return "see " + log


def tail(path, lines=25):
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-lines:])


# ---------------------------------------------------------------------------------------- test runs

@dataclasses.dataclass
class Run:
    """One test binary run, as ctest runs it (tests/CMakeLists.txt, tests/emulator/CMakeLists.txt)."""
    name: str
    binary: str  # relative to the build directory
    args: list
    env: dict


RUNS = [
    Run("forward", "tests/ember_tests", ["[cuda]"], {"EMBER_EMU_SCHEDULE": "forward", "EMBER_EMU_DEVICES": "2"}),
    Run("reverse", "tests/ember_tests", ["[cuda]"], {"EMBER_EMU_SCHEDULE": "reverse"}),
    Run("random", "tests/ember_tests", ["[cuda]"], {"EMBER_EMU_SCHEDULE": "random:1234"}),
    Run("nccl", "tests/ember_tests", ["[nccl]"], {"EMBER_EMU_SCHEDULE": "forward", "EMBER_EMU_DEVICES": "3"}),
    Run("emulator", "tests/emulator/ember_emulator_tests", [], {"EMBER_EMU_SCHEDULE": "forward", "EMBER_EMU_DEVICES": "2"}),
]


@dataclasses.dataclass
class Outcome:
    passed: bool
    cpu_s: float  # CPU time of the test process (all its threads)
    wall_s: float
    timed_out: bool = False
    failed: list = dataclasses.field(default_factory=list)  # failing test case names
    detail: str = ""  # a crash or a timeout: in which test case


@dataclasses.dataclass
class Limit:
    """A run's time limits. CPU time is the one that counts (a wrong kernel spinning in a loop burns it;
    other builds on the machine do not inflate it); the wall-clock limit only ends runs that hang idle."""
    cpu_s: float
    wall_s: float


def xml_test_cases(path):
    """(failed test case names, name of the last test case started) from Catch2's -r xml output, which
    may be cut short by a crash or a kill."""
    parser = ET.XMLPullParser(events=("start", "end"))
    failed, last_started = [], None
    try:
        with open(path, "rb") as f:
            parser.feed(f.read())
    except (OSError, ET.ParseError):
        pass
    try:
        for event, elem in parser.read_events():
            if elem.tag != "TestCase":
                continue
            if event == "start":
                last_started = elem.get("name")
            else:
                result = elem.find("OverallResult")
                if result is not None and result.get("success") == "false":
                    failed.append(elem.get("name"))
                last_started = None
    except ET.ParseError:
        pass
    return failed, last_started


def cpu_limiter(seconds):
    """preexec_fn: the kernel stops the test process at `seconds` of CPU time (SIGXCPU, then SIGKILL)."""
    soft = max(1, math.ceil(seconds))

    def set_limit():
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))

    return set_limit


def wait_child(proc, wall_s):
    """Waits for the child up to wall_s; returns (status or None on timeout, CPU seconds used)."""
    deadline = time.monotonic() + wall_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            return None, usage.ru_utime + usage.ru_stime
        time.sleep(0.05)


def run_tests(build_dir, run, limit, log_dir):
    """Runs one test binary under its schedule within its limits (the process group is killed at the
    wall-clock limit, the process itself at the CPU limit)."""
    xml_path = os.path.join(log_dir, f"{run.name}.xml")
    out_path = os.path.join(log_dir, f"{run.name}.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_EMU_")} | run.env
    cmd = [os.path.join(build_dir, run.binary), *run.args, "-r", "xml", "-o", xml_path]
    start = time.monotonic()
    with open(out_path, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=build_dir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=cpu_limiter(limit.cpu_s))
        rc, cpu_s = wait_child(proc, limit.wall_s)
    wall_s = time.monotonic() - start
    failed, running = xml_test_cases(xml_path)
    in_test = f' in "{running}"' if running else ""
    if rc is None:
        return Outcome(False, cpu_s, wall_s, timed_out=True, detail=f"wall clock over {limit.wall_s:.0f} s{in_test}")
    if rc in (-signal.SIGXCPU, -signal.SIGKILL) and cpu_s >= limit.cpu_s - 1:
        return Outcome(False, cpu_s, wall_s, timed_out=True, detail=f"CPU time over {limit.cpu_s:.0f} s{in_test}")
    if rc == 0:
        return Outcome(True, cpu_s, wall_s)
    detail = ""
    if not failed:
        how = f"signal {-rc}" if rc < 0 else f"exit status {rc}"
        detail = f"crashed ({how}){in_test}" if running else f"failed ({how}) without a failing test case"
    return Outcome(False, cpu_s, wall_s, failed=failed, detail=detail)


# ---------------------------------------------------------------------------------------- results

@dataclasses.dataclass
class Result:
    mutation: Mutation
    kind: str  # caught | timeout | missed | stale | build failed
    line: int | None = None
    text: str = ""
    seconds: float = 0.0


def describe_catch(name, outcome):
    if outcome.timed_out:
        return f"{name}: timeout ({outcome.detail})"
    if outcome.failed:
        names = ", ".join(f'"{n}"' for n in outcome.failed[:3])
        more = len(outcome.failed) - 3
        return f"{name}: {names}" + (f" and {more} more" if more > 0 else "")
    return f"{name}: {outcome.detail}"


def test_mutant(build_dir, limits, log_dir, keep_going):
    """Runs the test runs in order (all of them with keep_going); returns (kind, text)."""
    catches, timeouts, caught = [], 0, 0
    for run in RUNS:
        outcome = run_tests(build_dir, run, limits[run.name], log_dir)
        if outcome.passed:
            continue
        catches.append(describe_catch(run.name, outcome))
        timeouts += outcome.timed_out
        caught += not outcome.timed_out
        if not keep_going:
            break
    if not catches:
        return "missed", "missed"
    kind = "caught" if caught else "timeout"
    return kind, ("caught by " if caught else "") + "; ".join(catches)


def mutate_one(m, src_dir, build_dir, jobs, limits, log_root, keep_going, compiled):
    """Applies one mutation to the copy, rebuilds, tests, restores the file; returns its Result.
    `compiled`: the files the emulated build compiles (a mutant elsewhere cannot change a test)."""
    path = os.path.join(src_dir, m.file)
    if not os.path.isfile(path):
        return Result(m, "stale", text=f"stale: {m.file} does not exist")
    with open(path, encoding="utf-8") as f:
        original = f.read()
    try:
        mutated, line = m.apply(original)
    except Stale as e:
        return Result(m, "stale", text=f"stale: {e}")
    if os.path.normpath(path) not in compiled:
        return Result(m, "missed", line, "missed (not compiled into the emulated build)")
    log_dir = os.path.join(log_root, m.id)
    shutil.rmtree(log_dir, ignore_errors=True)  # no logs of an earlier run's test runs left beside this one's
    os.makedirs(log_dir)
    start = time.monotonic()
    write_file(path, mutated.encode())
    try:
        log = os.path.join(log_dir, "build.log")
        if not build(build_dir, jobs, log):
            return Result(m, "build failed", line, f"build failed: {first_error(log)}", time.monotonic() - start)
        kind, text = test_mutant(build_dir, limits, log_dir, keep_going)
        return Result(m, kind, line, text, time.monotonic() - start)
    finally:
        write_file(path, original.encode())  # rebuilt with the next mutant (or the next run's first build)


def md_cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(results):
    """The result table and the score line."""
    rows = ["| mutation | file:line | description | result |", "|---|---|---|---|"]
    for r in results:
        where = f"{r.mutation.file}:{r.line}" if r.line else r.mutation.file
        rows.append(f"| `{r.mutation.id}` | `{where}` | {md_cell(r.mutation.description)} | {md_cell(r.text)} |")
    count = {k: sum(r.kind == k for r in results) for k in ("caught", "timeout", "missed", "stale", "build failed")}
    scored = count["caught"] + count["timeout"] + count["missed"]
    killed = count["caught"] + count["timeout"]
    pct = f" ({100.0 * killed / scored:.0f}%)" if scored else ""
    score = (f"**Score: {killed}/{scored} mutants caught{pct}** ({count['caught']} by a failing test, "
             f"{count['timeout']} by a timeout; {count['missed']} missed). Not scored: {count['stale']} stale, "
             f"{count['build failed']} build failed.")
    return "\n".join(rows) + "\n\n" + score + "\n"


# ---------------------------------------------------------------------------------------- main

def list_mutations(mutations):
    for m in mutations:
        path = os.path.join(REPO, m.file)
        try:
            with open(path, encoding="utf-8") as f:
                _, line = m.apply(f.read())
            where = f"{m.file}:{line}"
        except OSError:
            where = f"{m.file} (stale: no such file)"
        except Stale as e:
            where = f"{m.file} (stale: {e})"
        print(f"{m.id:28} {where:44} {m.description}")


def measure_baseline(build_dir, log_root, factor):
    """Runs every test run on the unmutated build; returns each run's limits: `factor` times its CPU
    time (at least MIN_TIMEOUT_S), and for the wall clock WALL_FACTOR times the larger of that and
    `factor` times its wall time (other builds on the machine slow the wall clock, not the CPU time)."""
    limits = {}
    log_dir = os.path.join(log_root, "_baseline")
    os.makedirs(log_dir, exist_ok=True)
    for run in RUNS:
        outcome = run_tests(build_dir, run, Limit(3600, 3600), log_dir)
        if not outcome.passed:
            fail(f"the unmutated {run.name} run fails ({describe_catch(run.name, outcome)}); "
                 f"mutants cannot be judged (log: {log_dir}/{run.name}.log)")
        cpu = max(MIN_TIMEOUT_S, factor * outcome.cpu_s)
        limits[run.name] = Limit(cpu, WALL_FACTOR * max(cpu, factor * outcome.wall_s))
        note(f"  baseline {run.name}: {outcome.cpu_s:.1f} s CPU, {outcome.wall_s:.1f} s wall -> limits "
             f"{limits[run.name].cpu_s:.0f} s CPU, {limits[run.name].wall_s:.0f} s wall")
    return limits


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true", help="list the mutations and where they apply, then exit")
    p.add_argument("--only", metavar="ID[,ID]", help="run only these mutations")
    p.add_argument("--jobs", type=int, default=2, help="ninja -j (default 2)")
    p.add_argument("--keep-going", action="store_true",
                   help="run every test run for each mutant instead of stopping at the first failing one")
    p.add_argument("--markdown", metavar="FILE", help="also write the table and score to FILE (atomically)")
    p.add_argument("--workdir", metavar="DIR", default=os.path.join(tempfile.gettempdir(), "ember-mutate"),
                   help="scratch directory for the copy and its build, kept between runs (default: %(default)s)")
    p.add_argument("--mutations", metavar="FILE", default=DEFAULT_LIST, help="the mutation list (default: %(default)s)")
    p.add_argument("--timeout-factor", type=float, default=3.0,
                   help=f"a run's CPU-time limit: this times its unmutated CPU time, at least {MIN_TIMEOUT_S:.0f} s "
                   "(default 3)")
    a = p.parse_args()
    if a.jobs < 1:
        p.error("--jobs must be at least 1")
    if a.timeout_factor <= 1.0:
        p.error("--timeout-factor must be above 1")
    return a


def main():
    a = parse_args()
    mutations = select(load_mutations(a.mutations), a.only)
    if a.list:
        list_mutations(mutations)
        return 0
    workdir = os.path.abspath(a.workdir)
    if workdir == REPO or workdir.startswith(REPO + os.sep):
        fail(f"--workdir {workdir} lies inside the repository")
    os.makedirs(workdir, exist_ok=True)
    build_dir, log_root = os.path.join(workdir, "build"), os.path.join(workdir, "logs")
    os.makedirs(log_root, exist_ok=True)
    note(f"mutate: copying the repository to {workdir}/src")
    src_dir, changed = sync_tree(workdir)
    note(f"  {changed} file(s) written")
    if not configure(src_dir, build_dir, os.path.join(log_root, "configure.log")):
        fail(f"cmake failed:\n{tail(os.path.join(log_root, 'configure.log'))}")
    note(f"mutate: building {' '.join(TARGETS)} (emulated only, -j{a.jobs})")
    if not build(build_dir, a.jobs, os.path.join(log_root, "build.log")):
        fail(f"the unmutated build fails:\n{tail(os.path.join(log_root, 'build.log'))}")
    note("mutate: timing the unmutated test runs")
    limits = measure_baseline(build_dir, log_root, a.timeout_factor)
    compiled = compiled_files(build_dir)

    # Mutants of one file one after another: restoring a file and mutating it again is one rebuild.
    order = sorted(range(len(mutations)), key=lambda i: (mutations[i].file, i))
    results = [None] * len(mutations)
    for n, i in enumerate(order, 1):
        m = mutations[i]
        note(f"[{n}/{len(mutations)}] {m.id} ({m.file})")
        results[i] = mutate_one(m, src_dir, build_dir, a.jobs, limits, log_root, a.keep_going, compiled)
        note(f"    {results[i].text} ({results[i].seconds:.0f} s)")
    table = markdown(results)
    print(table, end="")
    if a.markdown:
        path = os.path.abspath(a.markdown)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_file(path, table.encode())
    return 1 if any(r.kind in ("stale", "build failed") for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        note("mutate: interrupted (the copy's files are restored by the next run's sync)")
        sys.exit(130)
