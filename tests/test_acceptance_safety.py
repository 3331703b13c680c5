"""``--parallel-safety`` as a user sees it: known collisions found, known non-collisions not.

One project holds a collision of each kind (a fixed file in the repository and in
``/tmp``, a fixed port, an environment variable written without monkeypatch, a
``chdir`` without restore, a SQLite file, a module-global cache, a session fixture's
file) and the ways of doing the same safely (``tmp_path``, ``tmpdir``,
``tmp_path_factory``, ``monkeypatch.setenv``/``chdir``, read-only opens, port 0, an
in-memory database). It runs once, in a subprocess (an audit hook stays for the life
of its process), and the tests read its report. Nothing here asserts a time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import LAB_INI

#: A fixed port for the project, free when the project is written.
with socket.socket() as _probe:
    _probe.bind(("127.0.0.1", 0))
    FIXED_PORT = _probe.getsockname()[1]
#: A fixed file in /tmp, named once per run of this module (other runs may be on the machine).
FIXED_TMP = Path("/tmp") / f"lab-safety-{uuid.uuid4().hex[:12]}.txt"

CONFTEST = """
from pathlib import Path
import pytest

HERE = Path(__file__).parent

@pytest.fixture(scope="session")
def session_file():
    path = HERE / "session.txt"
    path.write_text("shared by the session")
    yield path
    path.unlink()

@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    # A session fixture's own state: every worker sets it up, no test leaves it.
    import os
    os.environ["LAB_EXPORTED_BY_FIXTURE"] = str(tmp_path_factory.getbasetemp())
    yield
"""

FILES = """
from pathlib import Path

HERE = Path(__file__).parent
FIXED_TMP = Path({fixed_tmp!r})

def test_file_a():
    (HERE / "shared.txt").write_text("a")

def test_file_b():
    (HERE / "shared.txt").write_text("b")

def test_tmpfile_write():
    FIXED_TMP.write_text("written")

def test_tmpfile_read():
    assert FIXED_TMP.read_text() == "written"
    FIXED_TMP.unlink()

def test_read_only_a():
    assert (HERE / "data.txt").read_text() == "data"

def test_read_only_b():
    with open(HERE / "data.txt", "rb") as handle:
        assert handle.read() == b"data"

def test_tmp_path_a(tmp_path):
    (tmp_path / "same-name.txt").write_text("a")

def test_tmp_path_b(tmp_path):
    (tmp_path / "same-name.txt").write_text("b")

def test_tmpdir(tmpdir):
    tmpdir.join("same-name.txt").write("c")

def test_factory_a(tmp_path_factory):
    (tmp_path_factory.mktemp("made") / "same-name.txt").write_text("d")

def test_factory_b(tmp_path_factory):
    (tmp_path_factory.mktemp("made") / "same-name.txt").write_text("e")

def test_uses_session_file(session_file, exported):
    assert session_file.read_text()

def test_also_uses_session_file(session_file):
    assert session_file.exists()
"""

NETWORK = """
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
PORT = {port}

def _bind(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", port))
        return server.getsockname()[1]

def test_port_a():
    assert _bind(PORT) == PORT

def test_port_b():
    assert _bind(PORT) == PORT

def test_port_zero_a():
    assert _bind(0)

def test_port_zero_b():
    assert _bind(0)

def test_db_create():
    with sqlite3.connect(HERE / "app.db") as db:
        db.execute("create table if not exists users (name text)")

def test_db_query():
    with sqlite3.connect(str(HERE / "app.db")) as db:
        db.execute("select * from users").fetchall()

def test_memory_db():
    sqlite3.connect(":memory:").close()

SERVE = [sys.executable, "-c", "open('served.txt', 'w').write('x')"]

def test_serve_a():
    subprocess.run(SERVE, cwd=HERE, check=True)

def test_serve_b():
    subprocess.run(SERVE, cwd=HERE, check=True)

def test_serve_in_tmp_path_a(tmp_path):
    subprocess.run(SERVE, cwd=tmp_path, check=True)

def test_serve_in_tmp_path_b(tmp_path):
    subprocess.run(SERVE, cwd=tmp_path, check=True)
"""

STATE = """
import os

_CACHE = {}
LIMIT = 3

def cached(key):
    if key not in _CACHE:
        _CACHE[key] = key.upper()
    return _CACHE[key]

def from_cache(key):
    return _CACHE[key]

def test_env_set():
    os.environ["LAB_ACCEPT_MODE"] = "fast"

def test_env_get():
    assert os.environ.get("LAB_ACCEPT_MODE") == "fast"

def test_env_sets_its_own():
    # Sets the variable itself before reading it: a leak of its own, no use of the left one.
    os.environ["LAB_ACCEPT_MODE"] = "own"
    assert os.environ["LAB_ACCEPT_MODE"] == "own"

def test_env_overridden(monkeypatch):
    # Sets its own value (monkeypatch reads the old one to restore it): no use of the left one.
    monkeypatch.setenv("LAB_ACCEPT_MODE", "slow")

def test_env_restored():
    os.environ["LAB_ACCEPT_RESTORED"] = "1"
    try:
        assert os.environ["LAB_ACCEPT_RESTORED"] == "1"
    finally:
        del os.environ["LAB_ACCEPT_RESTORED"]

def test_monkeypatch_env_a(monkeypatch):
    monkeypatch.setenv("LAB_ACCEPT_PATCHED", "a")

def test_monkeypatch_env_b(monkeypatch):
    monkeypatch.setenv("LAB_ACCEPT_PATCHED", "b")
    assert os.environ["LAB_ACCEPT_PATCHED"] == "b"

def test_cache_fill():
    assert cached("a") == "A"

def test_cache_read():
    assert from_cache("a") == "A"

def test_constant_read():
    assert LIMIT == 3
"""

# Last (file order): its chdir leaves the directory to every later test of the run.
CHDIR = """
import os
from pathlib import Path

HERE = Path(__file__).parent

def test_monkeypatch_chdir(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    Path("relative.txt").write_text("fine")

def test_chdir():
    os.chdir(HERE / "sub")

def test_relative_open():
    assert Path("marker.txt").read_text() == "in sub"
"""

#: (problem, kind, tests) of every finding the project must produce, and no other.
EXPECTED = {
    ("collision", "file", ("test_a_files.py::test_file_a", "test_a_files.py::test_file_b")),
    (
        "collision",
        "file",
        ("test_a_files.py::test_tmpfile_write", "test_a_files.py::test_tmpfile_read"),
    ),
    (
        "collision",
        "file",
        ("test_a_files.py::test_uses_session_file", "test_a_files.py::test_also_uses_session_file"),
    ),
    ("collision", "port", ("test_b_network.py::test_port_a", "test_b_network.py::test_port_b")),
    (
        "collision",
        "sqlite",
        ("test_b_network.py::test_db_create", "test_b_network.py::test_db_query"),
    ),
    (
        "collision",
        "command",
        ("test_b_network.py::test_serve_a", "test_b_network.py::test_serve_b"),
    ),
    ("order", "env", ("test_c_state.py::test_env_set", "test_c_state.py::test_env_get")),
    ("leak", "env", ("test_c_state.py::test_env_sets_its_own",)),
    ("order", "global", ("test_c_state.py::test_cache_fill", "test_c_state.py::test_cache_read")),
    ("order", "cwd", ("test_z_chdir.py::test_chdir", "test_z_chdir.py::test_relative_open")),
}


def write_project(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text(LAB_INI)
    (root / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (root / "data.txt").write_text("data")
    (root / "sub").mkdir()
    (root / "sub" / "marker.txt").write_text("in sub")
    files = FILES.format(fixed_tmp=str(FIXED_TMP))
    (root / "test_a_files.py").write_text(textwrap.dedent(files))
    (root / "test_b_network.py").write_text(textwrap.dedent(NETWORK.format(port=FIXED_PORT)))
    (root / "test_c_state.py").write_text(textwrap.dedent(STATE))
    (root / "test_z_chdir.py").write_text(textwrap.dedent(CHDIR))


def run_pytest(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["COLUMNS"] = "80"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Checked:
    """The project's run with --parallel-safety: its output and its safety section."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # A base of its own: the default one's folder holds this project too.
        self.result = run_pytest(
            root,
            "--parallel-safety",
            "--parallel-report-json=run.json",
            f"--basetemp={root.parent / (root.name + '-base')}",
        )
        self.document: dict[str, Any] = json.loads((root / "run.json").read_text())
        self.safety: dict[str, Any] = self.document["safety"]
        self.findings: list[dict[str, Any]] = self.safety["findings"]

    def finding(self, problem: str, kind: str, first_test: str) -> dict[str, Any]:
        return next(
            f
            for f in self.findings
            if (f["problem"], f["kind"]) == (problem, kind) and f["tests"][0].endswith(first_test)
        )


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    root = tmp_path_factory.mktemp("safety-project")
    write_project(root)
    try:
        return Checked(root)
    finally:
        FIXED_TMP.unlink(missing_ok=True)


def test_the_project_passes_serially(checked: Checked) -> None:
    assert checked.result.returncode == 0, checked.result.stdout[-3000:]
    assert "37 passed" in checked.result.stdout


def test_every_collision_is_found_and_nothing_else(checked: Checked) -> None:
    found = {(f["problem"], f["kind"], tuple(f["tests"])) for f in checked.findings}
    assert found == EXPECTED


@pytest.mark.parametrize(
    ("problem", "kind", "first", "avoided_by"),
    [
        ("collision", "file", "test_file_a", "--dist loadscope"),
        ("collision", "port", "test_port_a", "--dist loadscope"),
        ("order", "env", "test_env_set", "--dist loadscope"),
        ("order", "cwd", "test_chdir", "--dist loadscope"),
        ("collision", "file", "test_uses_session_file", None),
    ],
)
def test_each_finding_says_which_dist_avoids_it(
    checked: Checked, problem: str, kind: str, first: str, avoided_by: str | None
) -> None:
    assert checked.finding(problem, kind, first)["avoided_by"] == avoided_by


def test_a_finding_names_the_resource_and_the_lines_that_touched_it(checked: Checked) -> None:
    finding = checked.finding("collision", "file", "test_file_a")
    assert finding["resource"] == str((checked.root / "shared.txt").resolve())
    touches = {
        (t["test"].split("::")[1], t["phase"], t["access"], t["location"])
        for t in finding["touches"]
    }
    assert touches == {
        ("test_file_a", "call", "write", "test_a_files.py:8"),
        ("test_file_b", "call", "write", "test_a_files.py:11"),
    }


def test_a_session_fixture_touch_names_the_fixture_and_its_scope(checked: Checked) -> None:
    finding = checked.finding("collision", "file", "test_uses_session_file")
    assert {
        (t["fixture"], t["fixture_scope"], t["phase"], t["access"]) for t in finding["touches"]
    } == {
        ("session_file", "session", "setup", "write"),
        ("session_file", "session", "teardown", "write"),
        (None, None, "call", "read"),  # the tests read it
    }
    assert "every xdist worker" in finding["fix"]


def test_an_order_dependence_is_reported_with_the_test_that_left_the_state(
    checked: Checked,
) -> None:
    finding = checked.finding("order", "env", "test_env_set")
    assert finding["resource"] == "LAB_ACCEPT_MODE"
    assert [(t["access"], t["location"]) for t in finding["touches"]] == [
        ("left", "test_c_state.py:16"),
        ("used", "test_c_state.py:19"),
    ]


def test_the_port_is_named_with_its_transport(checked: Checked) -> None:
    assert checked.finding("collision", "port", "test_port_a")["resource"] == f"{FIXED_PORT}/tcp"


def test_the_terminal_section_fits_80_columns(checked: Checked) -> None:
    out = checked.result.stdout
    section = out[out.index("parallel safety ===") :]
    assert "10 findings (6 collisions, 3 order dependences, 1 leak)" in section.replace("\n  ", " ")
    assert max(len(line) for line in section.splitlines()) <= 80


def test_show_prints_the_safety_section_of_a_saved_run(checked: Checked) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "pytest_parallel_lab", "show", str(checked.root / "run.json")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "80"},
    ).stdout
    assert "37 tests run serially, 10 findings" in shown
    assert "LAB_ACCEPT_MODE" in shown


def test_without_the_option_nothing_is_installed(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        test_probe="""
        import sys

        def test_no_audit_recorder(request):
            assert "pytest_parallel_lab.safety.audit" not in sys.modules
            assert request.config.pluginmanager.get_plugin("parallel-lab-safety") is None
        """
    )
    lab.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_gate_fails_a_run_with_findings(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        test_gate="""
        import os

        def test_leaves_env():
            os.environ["LAB_GATE"] = "1"
        """
    )
    result = lab.runpytest_subprocess("-p", "no:cacheprovider", "--parallel-safety-fail")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 finding (1 leak)*"])


def test_the_gate_passes_a_run_without_findings(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        test_clean="""
        def test_clean(monkeypatch, tmp_path):
            monkeypatch.setenv("LAB_GATE", "1")
            (tmp_path / "x").write_text("x")
        """
    )
    result = lab.runpytest_subprocess("-p", "no:cacheprovider", "--parallel-safety-fail")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*1 tests run serially, no finding*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--parallel-safety", "-n", "2"], "*--parallel-safety runs the suite serially*drop -n*"),
        (["--parallel-safety-confirm=0"], "*--parallel-safety-confirm: expected an integer >= 1*"),
        (
            ["--parallel-safety-confirm=2", "-p", "no:xdist"],
            "*--parallel-safety-confirm=2*needs pytest-xdist*pip install pytest-xdist*",
        ),
    ],
)
def test_bad_safety_options_are_usage_errors_naming_the_fix(
    lab: pytest.Pytester, args: list[str], message: str
) -> None:
    lab.makepyfile(test_x="def test_x():\n    pass\n")
    result = lab.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_no_parallel_safety_turns_off_the_ini(lab_ini: Any, lab: pytest.Pytester) -> None:
    lab_ini("parallel_safety = true\n")
    lab.makepyfile(test_x="import os\n\ndef test_x():\n    os.environ['LAB_INI'] = '1'\n")
    on = lab.runpytest_subprocess("-p", "no:cacheprovider")
    on.stdout.fnmatch_lines(["*parallel safety: 1 tests run serially, 1 finding*"])
    off = lab.runpytest_subprocess("-p", "no:cacheprovider", "--no-parallel-safety")
    assert "parallel safety" not in off.stdout.str()


ORDER_PROJECT = """
import os

def test_sets_mode():
    os.environ["LAB_CONFIRM_MODE"] = "fast"

def test_needs_mode():
    assert os.environ.get("LAB_CONFIRM_MODE") == "fast"
"""


def test_confirm_reruns_the_findings_under_n_and_says_which_failed(lab: pytest.Pytester) -> None:
    lab.makepyfile(test_order=ORDER_PROJECT)
    result = lab.runpytest_subprocess(
        "-p", "no:cacheprovider", "--parallel-safety-confirm=2", "--parallel-report-json=run.json"
    )
    result.assert_outcomes(passed=2)
    safety = json.loads((lab.path / "run.json").read_text())["safety"]
    # Under -n 2 the two tests go to different workers: the second one fails every time.
    assert safety["confirm"]["failed"] == ["test_order.py::test_needs_mode"]
    assert [f["confirmed"] for f in safety["findings"]] == [True]
    result.stdout.fnmatch_lines(["*1 of 1 findings failed for real (#1)*"])


HANGING_PROJECT = """
import os
import time
from pathlib import Path

def test_sets_mode():
    os.environ["LAB_HANG_MODE"] = "fast"

def test_needs_mode():
    if os.environ.get("PYTEST_XDIST_WORKER"):
        Path(__file__).with_name("worker.pid").write_text(str(os.getpid()))
        time.sleep(120)
    assert os.environ.get("LAB_HANG_MODE") == "fast"
"""


def test_ctrl_c_during_the_confirmation_ends_its_processes(lab: pytest.Pytester) -> None:
    lab.makepyfile(test_hang=HANGING_PROJECT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--parallel-safety-confirm=2"],
        cwd=lab.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    pid_file = lab.path / "worker.pid"
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() or not pid_file.read_text():
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the confirming run never started its test"
            time.sleep(0.1)
        worker = int(pid_file.read_text())
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "interrupted (Ctrl-C)" in out
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


RACES = """
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.parallel(backend="thread", tasks=4, workers=2, rounds=3)
def test_tasks_write_one_file():
    (HERE / "race.txt").write_text("x")


@pytest.mark.parallel(backend="thread", tasks=4, workers=2, rounds=3)
def test_tasks_write_their_own_files():
    (HERE / f"own-{threading.get_ident()}.txt").write_text("x")


def test_own_threads_write_one_file():
    # Both threads alive at once: a thread that ended may hand its ident to the next.
    both = threading.Barrier(2)

    def write():
        both.wait()
        (HERE / "mine.txt").write_text("y")

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_main_thread_writes_twice():
    (HERE / "twice.txt").write_text("1")
    (HERE / "twice.txt").write_text("2")


SEEN = []


@pytest.mark.parallel(backend="thread", tasks=4, workers=2, rounds=3)
def test_tasks_fill_one_global():
    SEEN.append(1)


@pytest.mark.parallel(backend="thread", tasks=4, workers=2, rounds=3)
def test_tasks_keep_their_own_state():
    seen = []
    seen.append(1)
"""


def test_threads_of_one_test_that_write_one_file_are_a_thread_race(lab: pytest.Pytester) -> None:
    lab.makepyfile(test_races=RACES)
    result = lab.runpytest_subprocess(
        "-p", "no:cacheprovider", "--parallel-safety", "--parallel-report-json=run.json"
    )
    result.assert_outcomes(passed=6)
    findings = json.loads((lab.path / "run.json").read_text())["safety"]["findings"]
    filled = "test_races.py::test_tasks_fill_one_global[thread]"
    assert {(f["problem"], f["resource"].rsplit("/", 1)[-1], f["tests"][0]) for f in findings} == {
        ("thread-race", "race.txt", "test_races.py::test_tasks_write_one_file[thread]"),
        ("thread-race", "mine.txt", "test_races.py::test_own_threads_write_one_file"),
        ("thread-race", "test_races.SEEN", filled),
        ("leak", "test_races.SEEN", filled),  # what the test left, as for any test
    }
    assert all(f["avoided_by"] is None for f in findings)
