"""What suite timing costs: 2,000 trivial tests with a few fixtures, side by side.

Runs, interleaved over several repeats in a new order each repeat (each a fresh
subprocess, so noise hits all variants alike), and prints the median and best wall
time of each variant, its ratio to the plugins disabled, and the *paired ratio*: per
repeat, the variant's time over the disabled run's time in that repeat, median over
repeats (the least noisy of the three), with a 95% bootstrap interval. The last lines
hold the report and the JSON against the targets (at most 3% over the plugin disabled,
and below pytest-durations; under ``-n 2`` at most 5% over ``-n 2`` with the plugin
disabled) and say "inconclusive" when the interval straddles one.

* ``disabled``: ``-p no:parallel_lab`` (and pytest-durations off)
* ``--durations``: pytest's own ``--durations=0`` (it hides durations under 5 ms, so on
  this suite it prints one line)
* ``--durations all``: the same with ``--durations-min=0``, every phase of every test
* ``pytest-durations``: the pytest-durations plugin, which times tests and fixtures and
  prints a report, as this plugin's suite analysis does (``pip install pytest-durations``;
  the variant is left out when it is not installed)
* ``no flags``: this plugin loaded, no option given (suite timing off)
* ``report``: ``--parallel-report`` (suite timing, prediction, the terminal report)
* ``json``: ``--parallel-report-json`` (suite timing, prediction, the JSON file)
* ``trace``: ``--parallel-trace`` (suite timing and the trace file, no prediction)
* ``disabled cached``, ``json cached``: the same two with pytest's cache on, as most runs
  have it (every other variant runs with ``-p no:cacheprovider``): the warm-up run's exit
  probe measurement is kept there, and the measured runs start no probe
* ``disabled -n 2``, ``json -n 2``: the same two under ``pytest -n 2`` (the workers time,
  the controller gathers, predicts and writes)

A CPU table gives the CPU seconds of the pytest process and its xdist workers (the
benchmark's waited-for children), paired against the plugin disabled under the same
``-n``: far less noisy than wall time on a shared machine, it shows where the cost is,
not what it does to the session. A last table splits each run into its phases, read
inside the pytest process by a small helper plugin: collection, the run loop (where every
test and fixture is timed) and the session finish (where the suite section, the
prediction and the files are made), each as a difference from the plugins disabled. The
run-loop difference is the cost of timing itself; the finish difference is the analysis
that a report asks for, paid once per run.

``--instructions`` runs each variant once under valgrind's callgrind instead (``apt
install valgrind``) and counts the machine instructions of the pytest process and of its
xdist workers in each phase: start-up (the imports and configure before the session
starts), collection, the run loop, the session finish and the exit. Instruction counts
do not depend on what else the machine runs, so they show a cost of a few milliseconds
that wall times on a busy host cannot; they are not time (a cache miss or a system call
costs more than its instructions say, waiting costs none), and the run under valgrind
is about 50 times slower. ``PYTHONHASHSEED=0`` keeps the counts repeatable.

The subprocesses run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed),
as an installed package runs: without it every import recompiles from source and the
comparison measures the compiler, not the plugin.

Usage: python benchmarks/bench_suite_overhead.py [--tests 2000] [--repeats 7]
[--only report,json,pytest-durations] [--instructions]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.metadata
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Collection
from pathlib import Path

from tabulate import tabulate

from pytest_parallel_lab.stats import Interval, bootstrap_median_interval

SESSION_TIME = re.compile(r"(?:passed|failed|error|errors|skipped|xfailed)\b[^\n]* in ([0-9.]+)s")

#: (variant, reference, the most it may cost over the reference): issue 11's targets.
TARGETS = [
    ("report", "disabled", 0.03),
    ("json", "disabled", 0.03),
    ("json -n 2", "disabled -n 2", 0.05),
    ("json cached", "disabled cached", 0.03),
]

FIXTURES = """
import pytest

@pytest.fixture(scope="session")
def config():
    return {"a": 1}

@pytest.fixture(scope="module")
def table(config):
    yield [config]

@pytest.fixture
def row(table):
    return table[0]
"""

#: Loaded with ``-p lab_phase_timer`` in every variant: where the run's time goes.
PHASE_TIMER = """
import atexit, json, os, time
import pytest

PHASES = {}

def _mark(name):
    PHASES[name] = time.perf_counter()

@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    _mark("sessionstart")

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection(session):
    _mark("collection")
    try:
        return (yield)
    finally:
        _mark("collected")

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    _mark("finish")
    try:
        return (yield)
    finally:
        _mark("finished")

@atexit.register
def _save():
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # under -n: the controller's phases are the session's
    with open(os.environ["LAB_PHASES_FILE"], "a") as handle:
        handle.write(json.dumps(PHASES) + "\\n")
"""


#: Loaded with ``-p lab_instruction_marks`` under ``--instructions``: callgrind dumps its
#: counts at each phase's end, one file per phase and process.
INSTRUCTION_MARKS = """
import os, subprocess
import pytest

def _dump(phase):
    subprocess.run(["callgrind_control", "--dump=" + phase, str(os.getpid())],
                   capture_output=True, check=False)

@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    _dump("start-up")

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session):
    _dump("collection")
    try:
        return (yield)
    finally:
        _dump("run-loop")

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    try:
        return (yield)
    finally:
        _dump("finish")
"""

#: The phases of ``--instructions``, in order; the exit is what the process ran after
#: its session finish (the dump at its termination).
INSTRUCTION_PHASES = ("start-up", "collection", "run-loop", "finish", "exit")


def count_instructions(
    where: Path, extra: list[str], env: dict[str, str]
) -> dict[str, dict[str, int]]:
    """One run under callgrind: the instructions of each phase, for the pytest process
    (``pytest``) and summed over its xdist workers (``workers``)."""
    out = where / "callgrind"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=yes",
            # the phase marks' own helper and platform's uname are not the run's work
            "--trace-children-skip=*callgrind_control*,*uname*",
            f"--callgrind-out-file={out}/cg.%p",
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:asyncio",
            "-p",
            "lab_instruction_marks",
            *extra,
        ],
        cwd=where,
        check=True,
        capture_output=True,
        text=True,
        env={**env, "PYTHONHASHSEED": "0"},
    )
    counts: dict[str, dict[str, int]] = {
        role: dict.fromkeys(INSTRUCTION_PHASES, 0) for role in ("pytest", "workers")
    }
    for dump in out.iterdir():
        head = dump.read_text(errors="replace").split("\nfn=", 1)[0]
        fields = dict(
            line.split(": ", 1)
            for line in head.splitlines()
            if ": " in line and not line.startswith("#")
        )
        command = fields.get("cmd", "")
        if "-m pytest" in command:
            role = "pytest"
        elif "exec(eval(sys.stdin.readline()))" in command:
            role = "workers"  # an xdist worker, as execnet starts it
        else:
            continue  # anything else the run started (the exit probe, a test's child)
        # "Trigger: dump <phase>" (a phase mark), "Trigger: Program termination" (the exit)
        trigger = fields.get("desc", "")
        phase = trigger.split("dump", 1)[1].strip() if "Trigger: dump" in trigger else "exit"
        if phase not in counts[role]:
            phase = "exit"
        total = fields.get("summary") or fields.get("totals") or "0"
        counts[role][phase] += int(total.split()[0])
    return counts


def print_instructions(tests: int, counts: dict[str, dict[str, dict[str, int]]]) -> None:
    """Millions of instructions per phase, each against the variant's disabled reference."""
    rows = []
    for name, roles in counts.items():
        ref = counts[reference_of(name, counts)]
        for role, phases in roles.items():
            if not any(phases.values()):
                continue
            row: list[object] = [name, role]
            for phase in INSTRUCTION_PHASES:
                delta = phases[phase] - ref[role][phase]
                row.append(f"{phases[phase] / 1e6:.0f} ({delta / 1e6:+.0f})")
            total, ref_total = sum(phases.values()), sum(ref[role].values())
            row.append(
                f"{total / 1e6:.0f} ({total / ref_total:.3f})"
                if ref_total
                else f"{total / 1e6:.0f}"
            )
            rows.append(row)
    print(f"{tests} trivial tests, millions of instructions under callgrind (difference from")
    print("the disabled reference; total: ratio); instructions are not time")
    print(tabulate(rows, ["variant", "process", *INSTRUCTION_PHASES, "total"]))
    print()
    for name, roles in counts.items():
        ref_name = reference_of(name, counts)
        if ref_name == name:
            continue
        ref = counts[ref_name]
        every = sum(sum(p.values()) for p in roles.values())
        ref_every = sum(sum(p.values()) for p in ref.values())
        loop = sum(p["run-loop"] for p in roles.values()) - sum(p["run-loop"] for p in ref.values())
        print(
            f"{name}: all processes {every / ref_every:.3f}x {ref_name}'s instructions; "
            f"run loop {loop / tests / 1e3:+.0f}k instructions a test"
        )


def variants() -> dict[str, list[str]]:
    """The command-line arguments of each variant (pytest-durations only when installed)."""
    # Its pytest11 entry point, not an importable name: an uninstall can leave an empty
    # package directory behind that imports as a namespace package.
    has_durations_plugin = any(
        entry.name == "pytest-durations"
        for entry in importlib.metadata.entry_points(group="pytest11")
    )
    # pytest-durations reports by default once installed: off everywhere but its own row.
    durations_off = ["-p", "no:pytest-durations"] if has_durations_plugin else []
    # pytest's cache off, so that no run depends on what an earlier one left...
    quiet = ["-p", "no:cacheprovider", *durations_off]
    off = ["-p", "no:parallel_lab", *quiet]
    chosen = {
        "disabled": off,
        "--durations": [*off, "--durations=0"],
        "--durations all": [*off, "--durations=0", "--durations-min=0"],
        "pytest-durations": ["-p", "no:cacheprovider", "-p", "no:parallel_lab"],
        "no flags": quiet,
        "report": [*quiet, "--parallel-report"],
        "json": [*quiet, "--parallel-report-json=run.json"],
        "trace": [*quiet, "--parallel-trace=trace.json"],
        # under -n 2: the controller and two workers, each with the plugin loaded
        "disabled -n 2": [*off, "-n", "2"],
        "json -n 2": [*quiet, "-n", "2", "--parallel-report-json=run.json"],
        # ...but for these two, as most runs have it: the exit probe's measurement of
        # the warm-up run is kept there for a day, and the later runs start none
        "disabled cached": ["-p", "no:parallel_lab", *durations_off],
        "json cached": [*durations_off, "--parallel-report-json=run.json"],
    }
    if not has_durations_plugin:
        print("pytest-durations is not installed (pip install pytest-durations): left out\n")
        del chosen["pytest-durations"]
    return chosen


def write_suite(where: Path, tests: int, modules: int = 20) -> None:
    (where / "conftest.py").write_text(FIXTURES)
    per_module = tests // modules
    for m in range(modules):
        body = "\n".join(
            f"def test_{i}(row):\n    assert row['a'] == 1\n" for i in range(per_module)
        )
        (where / f"test_m{m}.py").write_text(body)


def child_environment(helpers: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(helpers), env.get("PYTHONPATH")]))
    return env


def children_cpu_s() -> float:
    """The CPU seconds of every child process waited for so far (and theirs: pytest
    waits for its xdist workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(
    where: Path, extra: list[str], env: dict[str, str]
) -> tuple[float, float, dict[str, float], float]:
    """The process wall time, pytest's session time, the in-process phase lengths, and
    the CPU seconds of the pytest process with its xdist workers."""
    from time import perf_counter  # the benchmark's own clock, not the plugin's

    phases_file = where / "phases.jsonl"
    phases_file.unlink(missing_ok=True)
    cpu_before = children_cpu_s()
    start = perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:asyncio",
            "-p",
            "lab_phase_timer",
            *extra,
        ],
        cwd=where,
        check=True,
        capture_output=True,
        text=True,
        env={**env, "LAB_PHASES_FILE": str(phases_file)},
    )
    wall = perf_counter() - start
    cpu = children_cpu_s() - cpu_before
    found = SESSION_TIME.findall(done.stdout)
    if not found:
        raise RuntimeError(f"no session time in: {done.stdout[-500:]!r}")
    session = float(found[-1])
    marks = json.loads(phases_file.read_text())
    phases = {
        "collection": marks["collected"] - marks["collection"],
        "run loop": marks["finish"] - marks["collected"],
        "finish": marks["finished"] - marks["finish"],
    }
    return wall, session, phases, cpu


def paired(times: dict[str, list[float]], name: str, reference: str = "disabled") -> Interval:
    """The median over repeats of the variant's time over the reference's time in the
    same repeat (a slow spell of the machine hits both), with its 95% bootstrap interval."""
    ratios = [t / d for t, d in zip(times[name], times[reference], strict=True)]
    return bootstrap_median_interval(ratios)


def reference_of(name: str, times: Collection[str]) -> str:
    """What a variant is compared with: the plugin disabled, under -n 2 for a -n 2 one."""
    for suffix in ("-n 2", "cached"):
        if name.endswith(suffix) and f"disabled {suffix}" in times:
            return f"disabled {suffix}"
    return "disabled"


def print_table(times: dict[str, list[float]], by_mode: bool = False) -> None:
    """Each variant's times; the paired ratio against the plugin disabled (under the
    same -n when *by_mode*)."""
    base, best = statistics.median(times["disabled"]), min(times["disabled"])
    rows = []
    for name, t in times.items():
        ratio = paired(times, name, reference_of(name, times) if by_mode else "disabled")
        rows.append(
            [
                name,
                f"{statistics.median(t):.3f}",
                f"{min(t):.3f}",
                f"{statistics.median(t) / base:.3f}",
                f"{min(t) / best:.3f}",
                f"{ratio.estimate:.3f} [{ratio.low:.3f}-{ratio.high:.3f}]",
            ]
        )
    headers = ["variant", "median s", "min s", "median ratio", "min ratio", "paired [95% CI]"]
    print(tabulate(rows, headers))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated variants to run (the disabled run is always included), "
        "e.g. report,json,pytest-durations: more repeats in the same time",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="run each variant once under valgrind's callgrind and count instructions "
        "per phase and process (default variants: disabled, json and both under -n 2)",
    )
    args = parser.parse_args()
    if args.instructions and not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        parser.error(
            "--instructions needs valgrind and its callgrind_control (apt install valgrind)"
        )
    if args.instructions and not args.only:
        args.only = "json,json -n 2"
    import pytest_parallel_lab

    # As pip does on install: the plugin's bytecode exists before the first run.
    compileall.compile_dir(Path(pytest_parallel_lab.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        write_suite(where, args.tests)
        helpers = where / "helpers"
        helpers.mkdir()
        (helpers / "lab_phase_timer.py").write_text(PHASE_TIMER)
        (helpers / "lab_instruction_marks.py").write_text(INSTRUCTION_MARKS)
        env = child_environment(helpers)
        chosen = variants()
        if args.only:
            wanted = {"disabled", *(name.strip() for name in args.only.split(","))}
            # each variant's own reference too (disabled -n 2, disabled cached)
            wanted |= {f"disabled {s}" for n in wanted for s in ("-n 2", "cached") if n.endswith(s)}
            unknown = wanted - set(chosen)
            if unknown:
                parser.error(f"--only: unknown variants {sorted(unknown)}; known: {sorted(chosen)}")
            chosen = {name: extra for name, extra in chosen.items() if name in wanted}
        for extra in chosen.values():  # warm-up: bytecode caches, file system
            run_once(where, extra, env)
        if args.instructions:
            counted = {}
            for name, extra in chosen.items():
                counted[name] = count_instructions(where, extra, env)
            print_instructions(args.tests, counted)
            return 0
        walls: dict[str, list[float]] = {name: [] for name in chosen}
        cpus: dict[str, list[float]] = {name: [] for name in chosen}
        sessions: dict[str, list[float]] = {name: [] for name in chosen}
        phases: dict[str, list[dict[str, float]]] = {name: [] for name in chosen}
        order = list(chosen)
        for repeat in range(args.repeats):
            # A new order each repeat, so that no variant always follows the same one.
            random.Random(repeat).shuffle(order)
            for name in order:
                wall, session, split, cpu = run_once(where, chosen[name], env)
                walls[name].append(wall)
                cpus[name].append(cpu)
                sessions[name].append(session)
                phases[name].append(split)
    for what, times in (("pytest's session time", sessions), ("process wall time", walls)):
        print(f"{args.tests} trivial tests, {args.repeats} interleaved repeats, {what}")
        print_table(times)
        print()
    # CPU seconds are far less noisy than wall time on a shared machine: where the cost
    # is, not what it does to the session (-n 2 variants against disabled -n 2).
    print(f"{args.tests} trivial tests, CPU seconds of pytest and its xdist workers")
    print_table(cpus, by_mode=True)
    print()
    # The targets are on the session (issue 11): the process wall adds the interpreter's
    # and the plugin's import, paid before any session starts.
    for name, reference, target in TARGETS:
        if name not in sessions or reference not in sessions:
            continue
        ratio = paired(sessions, name, reference)
        if ratio.high <= 1 + target:
            verdict = f"within the {target:.0%} target"
        elif ratio.low > 1 + target:
            verdict = f"over the {target:.0%} target"
        else:
            verdict = f"the {target:.0%} target inside the interval: inconclusive at this noise"
        line = (
            f"{name}: session {ratio.estimate - 1:+.1%} [{ratio.low - 1:+.1%} to "
            f"{ratio.high - 1:+.1%}] against {reference} ({verdict})"
        )
        if "pytest-durations" in sessions and reference == "disabled":
            versus = paired(sessions, name, "pytest-durations")
            relation = (
                "below"
                if versus.high < 1.0
                else "above"
                if versus.low > 1.0
                else "not distinguishable from"
            )
            line += (
                f"; {relation} pytest-durations (ratio {versus.estimate:.3f} "
                f"[{versus.low:.3f}-{versus.high:.3f}])"
            )
        print(line)

    def phase_median(name: str, phase: str) -> float:
        return statistics.median(p[phase] for p in phases[name])

    split_rows = []
    for name in walls:
        row: list[object] = [name]
        ref = reference_of(name, walls)
        for phase in ("collection", "run loop", "finish"):
            delta = phase_median(name, phase) - phase_median(ref, phase)
            row.append(f"{phase_median(name, phase) * 1000:.0f} ({delta * 1000:+.0f})")
        loop_delta = phase_median(name, "run loop") - phase_median(ref, "run loop")
        row.append(f"{loop_delta / statistics.median(walls[ref]):+.1%}")
        split_rows.append(row)
    print()
    print("phases inside pytest, median ms (difference from its disabled reference)")
    print(
        tabulate(
            split_rows,
            ["variant", "collection", "run loop", "finish", "run-loop cost / disabled wall"],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
