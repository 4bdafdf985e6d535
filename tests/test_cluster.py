"""A real dask.distributed cluster on loopback (scheduler and worker processes) gives the same
answers as the local run, photo by photo, and survives dying workers."""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import LFW, ROOT

distributed = pytest.importorskip("distributed")
BIN = Path(sys.executable).parent


def start_scheduler(folder, command, env):
    """A scheduler process on a free loopback port, and its address."""
    scheduler_file = folder / "scheduler.json"
    scheduler = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", scheduler_file],
                                 env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        if scheduler_file.exists() and scheduler_file.stat().st_size:
            break
        time.sleep(0.1)
    return scheduler, json.loads(scheduler_file.read_text())["address"]


def checkout_env(env=None):
    """``env`` (default: this process's) for a scheduler or worker that must run the checkout
    under test, as the client checks (``features.CODE_FINGERPRINT``): without PYTHONPATH, as the
    README says, when the editable install points at it; else (the tests run in another
    checkout, such as a git worktree) with PYTHONPATH set to it."""
    env = {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONPATH"}
    installed = subprocess.run([sys.executable, "-c", "import features; print(features.__file__)"],
                               env=env, cwd="/", capture_output=True, text=True).stdout.strip()
    return env if installed == str(ROOT / "features" / "__init__.py") else {**env, "PYTHONPATH": str(ROOT)}


def start_worker(folder, address, name, env=None, prefix=(), threads=1):
    """A worker process named ``name``, without a nanny (a kill ends it), and its address once
    it joined (``prefix``: a command that runs it, such as ``unshare``)."""
    worker = subprocess.Popen([*prefix, BIN / "dask", "worker", address, "--name", name, "--nthreads", str(threads),
                               "--host", "127.0.0.1", "--no-dashboard", "--no-nanny"],
                              env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    with distributed.Client(address, timeout="30s") as client:
        while not (found := [w for w, info in client.scheduler_info()["workers"].items() if info["name"] == name]):
            assert worker.poll() is None and time.time() < deadline, f"the worker {name} did not join"
            time.sleep(0.1)
    return worker, found[0]


def stop(*processes):
    """SIGTERM each process in turn (workers before their scheduler, which they tell that they
    leave); one still running 60 s later is killed, and fails the test, not left behind."""
    slow = []
    for process in processes:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            slow.append(" ".join(map(str, process.args)))
    assert not slow, f"killed, still running 60 s after SIGTERM: {slow}"


def kill_if_running(process):
    """A command still running when its test ends is killed: it waited for ever, the defect
    the test is about (None: it never started)."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Scheduler and workers started as the README says: from the installed .venv, in another
    folder, with no PYTHONPATH (but for tests run in another checkout: :func:`checkout_env`)."""
    folder = tmp_path_factory.mktemp("dask")
    env = checkout_env()
    scheduler, address = start_scheduler(folder, [BIN / "dask", "scheduler"], env)
    workers = subprocess.Popen([BIN / "dask", "worker", address, "--nworkers", "2", "--nthreads", "1",
                                "--host", "127.0.0.1", "--no-dashboard"],
                               env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with distributed.Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=120)
    yield {"address": address, "workers": workers}
    stop(workers, scheduler)


def test_a_scheduler_without_the_project_is_one_clear_line(trained, tmp_path):
    """A scheduler that cannot import the project (Python without site-packages' .pth files,
    so without the editable install) fails the run with one line naming the fix."""
    site = next(Path(sys.executable).parent.parent.glob("lib/python*/site-packages"))
    env = {**os.environ, "PYTHONPATH": str(site)}
    scheduler, address = start_scheduler(tmp_path, [sys.executable, "-S", "-m", "distributed.cli.dask_scheduler"], env)
    worker = subprocess.Popen([BIN / "dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
                               "--host", "127.0.0.1", "--no-dashboard"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=120)
        result = recommend(trained, LFW / "Yusuf_Misbac_0001.jpg", "--json", "--scheduler", address)
    finally:
        stop(worker, scheduler)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"recommend.py: error: the scheduler at {address} cannot import this project's code: run "
        "`make install` (or `pip install -e .`) in the repository on every host and start dask "
        "from its .venv (README, Scaling out on Dask)"]


def test_a_scheduler_and_a_worker_with_other_code_are_one_clear_line(trained, tmp_path):
    """A worker started before an update runs the old code, and answered with it; now the
    client compares its code's fingerprint with the scheduler's and every worker's, and names
    the ones that differ.  Here "before the update" is a copy of the project without a
    function the client sends (:func:`older_code`), on the scheduler and one of two workers."""
    old_env = older_code(tmp_path)
    scheduler, address = start_scheduler(tmp_path, [BIN / "dask", "scheduler"], old_env)
    processes = [scheduler]
    try:
        old, old_address = start_worker(tmp_path, address, "old", old_env)
        processes.append(old)
        new, _ = start_worker(tmp_path, address, "new", checkout_env())
        processes.append(new)
        result = recommend(trained, LFW / "Yusuf_Misbac_0001.jpg", "--scheduler", address)
    finally:
        stop(*reversed(processes))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"recommend.py: error: {address}: the scheduler and the worker at {old_address} "
                             "run other code than this client: update to the client's code and restart "
                             "(README, Scaling out on Dask)\n")


def older_code(folder):
    """The environment of a process that runs "the code before an update": a copy of the
    project without a function the client sends (a worker that cannot unpickle a task leaves
    the cluster, so the check must come first)."""
    older = folder / "older"
    shutil.copytree(ROOT / "features", older / "features", ignore=shutil.ignore_patterns("__pycache__", "*.onnx"))
    module = older / "features" / "app" / "analysis.py"
    text = module.read_text()
    assert "def analyse_chunk_on_worker(" in text
    module.write_text(text.replace("def analyse_chunk_on_worker(", "def analyse_chunk_before_the_update("))
    return {**checkout_env(), "PYTHONPATH": str(older)}


def refused_by_both_tools(trained, folder, scheduler_env, worker_env):
    """recommend.py on one photo and a small train.py, each against a cluster of a scheduler and
    one worker started with these environments, checked to answer nothing and write no model:
    the scheduler's address, the worker's, and ``{tool: its CompletedProcess}``."""
    scheduler, address = start_scheduler(folder, [BIN / "dask", "scheduler"], scheduler_env)
    processes = [scheduler]
    try:
        worker, worker_address = start_worker(folder, address, "worker", worker_env)
        processes.append(worker)
        answered = recommend(trained, LFW / "Yusuf_Misbac_0001.jpg", "--scheduler", address)
        trained_here = subprocess.run([sys.executable, str(ROOT / "train.py"), "--limit", "240", "--n-splits", "3",
                                       "--no-plots", "--out", str(folder / "out"), "--scheduler", address],
                                      capture_output=True, text=True, cwd=ROOT)
    finally:
        stop(*reversed(processes))
    assert answered.stdout == "" and not (folder / "out" / "model.joblib").exists()
    return address, worker_address, {"recommend.py": answered, "train.py": trained_here}


def other_networks(folder):
    """The environment of a process that runs this code with one network file changed (an
    export run again on its host): the Python files are the same, so only the networks tell."""
    copy = folder / "networks"
    shutil.copytree(ROOT / "features", copy / "features", ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "features" / "vision" / "models" / "frontal_face_detector.svm", "ab") as network:
        network.write(b"\n")
    return {**checkout_env(), "PYTHONPATH": str(copy)}


def test_a_worker_with_other_networks_is_one_clear_line(trained, tmp_path):
    """The same Python code with another network file computes other features, and the code's
    fingerprint cannot tell: the client compares the workers' network files too (the scheduler
    runs none)."""
    address, worker_address, results = refused_by_both_tools(trained, tmp_path, other_networks(tmp_path),
                                                             other_networks(tmp_path / "worker"))
    for tool, result in results.items():
        assert result.returncode == 1
        assert result.stderr == (f"{tool}: error: {address}: the worker at {worker_address} runs other networks "
                                 "(the files in features/vision/models) than this client: update to the client's "
                                 "code and restart (README, Scaling out on Dask)\n")


def test_a_worker_whose_checkout_is_half_updated_is_one_clear_line(trained, tmp_path):
    """A worker whose ``import features`` fails with another error than ImportError (a
    ``git pull`` cut short leaves a SyntaxError) raised it through Dask's ``run``: a one-line
    error in recommend.py, but a traceback in train.py, which expects the tool's own errors."""
    half = tmp_path / "half"
    shutil.copytree(ROOT / "features", half / "features", ignore=shutil.ignore_patterns("__pycache__", "*.onnx"))
    with open(half / "features" / "__init__.py", "a") as module:
        module.write("\ndef cut_short(\n")
    _, worker_address, results = refused_by_both_tools(trained, tmp_path, checkout_env(),
                                                       {**checkout_env(), "PYTHONPATH": str(half)})
    for tool, result in results.items():
        assert result.returncode == 1
        line, = result.stderr.splitlines()
        assert line.startswith(f"{tool}: error: the worker at {worker_address} cannot import this project's "
                               "code (SyntaxError: ")
        assert "(__init__.py, line " in line
        assert line.endswith(")): update to the client's code and restart (README, Scaling out on Dask)")


async def stick(seconds):
    """Keep a worker's event loop from doing anything else for ``seconds``."""
    time.sleep(seconds)


stick.__module__ = "__main__"  # sent by value (see die_on)


def test_a_stuck_worker_at_connect_is_one_clear_line_naming_it(trained, tmp_path):
    """The client asks every worker which code it runs; one whose event loop is stuck (here
    kept busy by a function run in it) never answers, and the run waited for ever.  It is
    named by its heartbeats, which stopped: the other worker's went on."""
    from features.app.cluster import CONNECT_SECONDS

    scheduler, address = start_scheduler(tmp_path, [BIN / "dask", "scheduler"], checkout_env())
    workers = []
    try:
        for name in ("stuck", "well"):
            workers.append(start_worker(tmp_path, address, name, checkout_env()))
        stuck_address = workers[0][1]
        with distributed.Client(address, timeout="30s") as client:
            client.run(stick, 3 * CONNECT_SECONDS, workers=[stuck_address], wait=False)
        started = time.time()
        result = recommend(trained, LFW / "Yusuf_Misbac_0001.jpg", "--scheduler", address)
        took = time.time() - started
    finally:
        for worker, _ in workers:
            kill_if_running(worker)
        scheduler.kill()
        scheduler.wait()
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"recommend.py: error: {address}: the worker at {stuck_address} did not say in "
                             f"{CONNECT_SECONDS} s which code runs there\n")
    assert took < 2 * CONNECT_SECONDS


def test_a_look_for_workers_when_the_scheduler_is_gone_takes_seconds(tmp_path):
    """While a chunk is awaited the client looks once a second for workers; a scheduler that
    died just then held the look for the client's connect time-out (20 s), which then
    answered from Dask's cache.  The look now gives up in LOOK_SECONDS and judges nothing:
    the scheduler's own loss is said by the cancelled tasks."""
    from features.app.cluster import LOOK_SECONDS, check_alone

    scheduler, address = start_scheduler(tmp_path, [BIN / "dask", "scheduler"], checkout_env())
    client = None
    try:
        client = distributed.Client(address, timeout="20s")
        alone = check_alone(client, address, None)
        assert alone is not None  # no worker: since now
        scheduler.kill()
        scheduler.wait()
        started = time.monotonic()
        since = check_alone(client, address, alone)
        took = time.monotonic() - started
    finally:
        scheduler.kill()
        scheduler.wait()
        if client is not None:
            client.close()
    assert since == alone
    assert took < LOOK_SECONDS + 3


@pytest.mark.parametrize("late_env, differs", [
    (older_code, "other code than this client"),
    (other_networks, "other networks (the files in features/vision/models) than this client"),
])
def test_a_worker_with_other_code_joining_mid_run_is_one_line_and_keeps_the_answers(trained, photos, tmp_path,
                                                                                   late_env, differs):
    """The check at connect sees the workers there; one that joins later is checked by each
    task it runs.  Here the only worker is killed after two answers and one with older code,
    or other network files, takes its place."""
    scheduler, address = start_scheduler(tmp_path, [BIN / "dask", "scheduler"], checkout_env())
    processes, process = [scheduler], None
    output = tmp_path / "answered.parquet"
    try:
        worker, _ = start_worker(tmp_path, address, "first", checkout_env())
        processes.append(worker)
        process, stdout, stderr = start_recommend(trained, photos, output, address, tmp_path)
        worker.kill()
        late, late_address = start_worker(tmp_path, address, "late", late_env(tmp_path))
        processes.append(late)
        process.wait(timeout=120)
    finally:
        kill_if_running(process)
        stop(*reversed(processes))
    records = [json.loads(line) for line in stdout.read_text().splitlines()]
    assert process.returncode == 1 and 2 <= len(records) < 26
    assert stderr.read_text().splitlines() == [f"recommend.py: error: {address}: the worker at {late_address} runs "
                                               f"{differs}: update to the client's code and restart (README, "
                                               "Scaling out on Dask)"]
    assert pd.read_parquet(output)["image"].drop_duplicates().tolist() == [r["image"] for r in records]


def test_the_code_fingerprint_skips_hidden_files_and_tells_a_change(tmp_path):
    """An editor's lock file (a dangling link named .#module.py) made ``import features`` fail
    in every command; a changed module changes the fingerprint."""
    def fingerprint():
        found = subprocess.run([sys.executable, "-c", "import features; print(features.CODE_FINGERPRINT)"],
                               env={**os.environ, "PYTHONPATH": str(tmp_path)}, cwd="/", capture_output=True,
                               text=True)
        assert found.returncode == 0, found.stderr
        return found.stdout.strip()

    shutil.copytree(ROOT / "features", tmp_path / "features", ignore=shutil.ignore_patterns("__pycache__", "*.onnx"))
    first = fingerprint()
    (tmp_path / "features" / "app" / ".#analysis.py").symlink_to("root@host.1234:1700000000")
    assert fingerprint() == first
    with open(tmp_path / "features" / "app" / "analysis.py", "a") as module:
        module.write("# one line more\n")
    assert fingerprint() != first


def recommend_beside_a_worker_with_its_own_mount(trained, tmp_path, mount, photo=LFW / "Yusuf_Misbac_0001.jpg"):
    """recommend.py on one photo, the cluster's only worker run in its own mount namespace
    after ``mount`` (the arguments of ``mount``); the result and the worker's address."""
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs unshare --mount (root) to change what the worker sees")
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'mount {shlex.join(mount)} && exec "$@"',
              "sh"]
    scheduler, address = start_scheduler(tmp_path, [BIN / "dask", "scheduler"], checkout_env())
    processes = [scheduler]
    try:
        worker, worker_address = start_worker(tmp_path, address, "elsewhere", checkout_env(), prefix=prefix)
        processes.append(worker)
        return recommend(trained, photo, "--scheduler", address), worker_address
    finally:
        stop(*reversed(processes))


def test_a_model_a_worker_cannot_read_is_one_clear_line(trained, tmp_path):
    """The client reads the model, a worker does not find it at that path (its host has no
    shared file system, or mounts it elsewhere): the model's own advice, "make one with:
    python train.py", was wrong there.  The worker's model folder is an empty tmpfs."""
    result, worker = recommend_beside_a_worker_with_its_own_mount(
        trained, tmp_path, ["-t", "tmpfs", "tmpfs", str(trained["out"])])
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"recommend.py: error: the worker at {worker} cannot read the model at "
                             f"{trained['model']} (No such file or directory): it must be at the same path "
                             "on every host (README, Scaling out on Dask)\n")


def test_a_worker_needs_no_catalog_file(trained, tmp_path):
    """The catalog travels with the run's settings: a worker's host needs no copy (its
    ``data`` folder here is an empty tmpfs), and one edited or different there cannot answer
    for the client's, where a worker read the catalog at the client's path."""
    photo = LFW / "Elton_John_0004.jpg"  # glasses: products are chosen
    result, _ = recommend_beside_a_worker_with_its_own_mount(
        trained, tmp_path, ["-t", "tmpfs", "tmpfs", str(ROOT / "data")], photo)
    local = recommend(trained, photo, "--n-jobs", "1")
    assert result.returncode == local.returncode == 0, result.stderr
    assert result.stdout == local.stdout and "$" in local.stdout


def test_another_model_at_the_same_path_on_a_worker_is_one_clear_line(trained, tmp_path):
    """A worker's host holds another model at the client's path (a copy from an older run):
    its answers passed for the client's model.  The worker's model folder is another model's
    (the same one with another threshold)."""
    from features.model.model_io import load_model, save_model

    model, card = load_model(trained["model"])
    other = tmp_path / "other" / trained["model"].name
    save_model(model.with_decisions(min_probability={"hat": 0.9}), card, other)
    result, worker = recommend_beside_a_worker_with_its_own_mount(
        trained, tmp_path, ["--bind", str(other.parent), str(trained["out"])])
    theirs = json.loads(other.with_name("model_card.json").read_text())["model_sha256"]
    assert theirs != card["model_sha256"]
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"recommend.py: error: the worker at {worker}: {trained['model']}: another "
                             f"model than the one checked at the start (checksum {theirs[:12]}, checked "
                             f"{card['model_sha256'][:12]}): every host needs the same file (README, Scaling "
                             "out on Dask)\n")


def test_every_worker_leaving_mid_run_is_one_line_and_keeps_the_answers(trained, photos, tmp_path):
    """The chunks of a cluster whose every worker left wait for one to join: the run waited,
    silent, for ever.  Now it ends with one line once the cluster has had no worker for
    WORKERS_SECONDS, and the photos answered stay printed and in the Parquet file."""
    from features.app.cluster import WORKERS_SECONDS

    scheduler, address = start_scheduler(tmp_path, [BIN / "dask", "scheduler"], checkout_env())
    processes = [scheduler]
    output = tmp_path / "answered.parquet"
    process = None
    try:
        worker, _ = start_worker(tmp_path, address, "leaving", checkout_env())
        processes.append(worker)
        process, stdout, stderr = start_recommend(trained, photos, output, address, tmp_path)
        worker.kill()
        left = time.time()
        process.wait(timeout=WORKERS_SECONDS + 90)
        waited = time.time() - left
    finally:
        kill_if_running(process)
        stop(*reversed(processes))
    records = [json.loads(line) for line in stdout.read_text().splitlines()]
    assert process.returncode == 1 and 2 <= len(records) < 26
    assert stderr.read_text().splitlines() == [f"recommend.py: error: {address}: every worker left and none "
                                               f"joined in {WORKERS_SECONDS} s"]
    assert WORKERS_SECONDS <= waited < WORKERS_SECONDS + 30
    assert pd.read_parquet(output)["image"].drop_duplicates().tolist() == [r["image"] for r in records]


def start_recommend(trained, photos, output, address, folder, answers=2):
    """recommend.py --json on ``photos`` at ``address`` with ``--output``, once it answered
    ``answers`` photos; its stdout and stderr go to files in ``folder``, returned with it (a
    pipe read line by line holds the lines read ahead, which communicate() then loses)."""
    stdout, stderr = folder / "stdout.jsonl", folder / "stderr.txt"
    with open(stdout, "w") as out, open(stderr, "w") as err:
        process = subprocess.Popen([sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]),
                                    str(photos), "--json", "--output", str(output), "--scheduler", address],
                                   stdout=out, stderr=err, cwd=ROOT)
    deadline = time.time() + 120
    while stdout.read_text().count("\n") < answers:
        assert process.poll() is None and time.time() < deadline, stderr.read_text()
        time.sleep(0.05)
    return process, stdout, stderr


def test_an_address_where_no_scheduler_answers_is_one_clear_line(trained, tmp_path):
    """A closed port, or another server (the dashboard's HTTP port given for the scheduler's):
    Dask's client hung there, or read the server's bytes as a frame's length (a MemoryError)."""
    from conftest import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while not accepts(port):
            assert time.time() < deadline, "http.server did not start"
            time.sleep(0.1)
        web = recommend(trained, LFW / "Yusuf_Misbac_0001.jpg", "--scheduler", f"tcp://127.0.0.1:{port}")
    finally:
        server.kill()
        server.wait()
    closed = recommend(trained, LFW / "Yusuf_Misbac_0001.jpg", "--scheduler", f"tcp://127.0.0.1:{port}")
    assert web.returncode == 1 and web.stdout == ""
    assert web.stderr == (f"recommend.py: error: tcp://127.0.0.1:{port}: not a Dask scheduler "
                          "(it said nothing in 10 s)\n")
    assert closed.returncode == 1
    assert closed.stderr == f"recommend.py: error: tcp://127.0.0.1:{port}: no Dask scheduler answers (Connection refused)\n"


def accepts(port):
    """Whether a server listens on the loopback ``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def photos(tmp_path_factory, lfw_paths):
    folder = tmp_path_factory.mktemp("cluster-photos")
    for path in lfw_paths[10:34] + [str(LFW / "Thaksin_Shinawatra_0005.jpg")]:
        shutil.copy(path, folder)
    (folder / "broken.jpg").write_bytes(b"not a photo")
    return folder


def recommend(trained, *args):
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT)


def test_cluster_run_matches_the_local_run(trained, cluster, photos):
    local = recommend(trained, photos, "--json", "--n-jobs", "1")
    remote = recommend(trained, photos, "--json", "--scheduler", cluster["address"])
    assert remote.returncode == local.returncode == 1  # the broken photo
    assert remote.stdout.splitlines() == local.stdout.splitlines()
    assert len(remote.stdout.splitlines()) == 26


def test_list_file_and_parquet_output(trained, cluster, photos, tmp_path):
    names = sorted(p for p in photos.iterdir())
    listing = tmp_path / "photos.csv"
    pd.DataFrame({"path": [str(p) for p in names]}).to_csv(listing, index=False)
    output = tmp_path / "results.parquet"
    result = recommend(trained, "--list", listing, "--json", "--output", output, "--scheduler", cluster["address"])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["image"] for r in records] == [str(p) for p in names]
    table = pd.read_parquet(output)
    assert len(table) == sum(max(1, len(r["faces"])) for r in records)
    two = table[table["image"].str.endswith("Thaksin_Shinawatra_0005.jpg")]
    assert two["face"].tolist() == [1, 2]  # numbered as the text and the annotated picture number them
    assert table.loc[table["image"].str.endswith("broken.jpg"), "error"].notna().all()


def test_a_worker_killed_mid_job_loses_no_photo(trained, cluster, photos, tmp_path):
    """A worker killed once the run has answered its first photo, while it is still running
    (a fixed wait could kill one before any photo was sent, or after the run): every photo
    is answered, as the local run answers it."""
    process, stdout, stderr = start_recommend(trained, photos, tmp_path / "out.parquet", cluster["address"],
                                              tmp_path, answers=1)
    with distributed.Client(cluster["address"]) as client:
        victim = next(iter(client.run(os.getpid).values()))
        assert process.poll() is None, "the run ended before a worker could be killed"
        os.kill(victim, signal.SIGKILL)  # the nanny starts a new worker
        process.wait(timeout=300)
        client.wait_for_workers(2, timeout=120)
    local = recommend(trained, photos, "--json", "--n-jobs", "1")
    assert process.returncode == local.returncode == 1, stderr.read_text()  # broken.jpg
    assert stdout.read_text().splitlines() == local.stdout.splitlines()
    assert len(local.stdout.splitlines()) == 26


def test_ctrl_c_on_a_cluster_run_is_one_line(trained, cluster, photos):
    """Closing the client after a Ctrl-C that broke one of Dask's waits ran a callback the
    wait had left, which Dask's loop logged with a traceback (about one stop in two): three
    stops, each one line."""
    for _ in range(3):
        process = subprocess.Popen([sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]),
                                    str(photos), "--json", "--scheduler", cluster["address"]],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        first = process.stdout.readline()  # a photo answered, the next chunks awaited
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        assert first and process.returncode == 130, stderr
        assert re.fullmatch(r"recommend.py: interrupted after \d+ of 26 photos\n", stderr), stderr


def die_on(items, poison):
    """Work that kills its worker process on the poisonous item, like a crashing decoder."""
    if poison in items:
        os._exit(1)
    return [item * 10 for item in items]


# The cluster has the project installed, not the tests: Dask sends a function of an
# importable module by name, and one of __main__ by value (cloudpickle).
die_on.__module__ = "__main__"


def test_a_photo_that_kills_its_worker_is_an_error_for_that_photo_only(cluster):
    from features.app.cluster import map_in_order

    with distributed.Client(cluster["address"]) as client:
        client.wait_for_workers(2, timeout=120)
        results = list(map_in_order(client, die_on, [[1, 2, 3], [4, 5, 6], [7]], 5,
                                    lost=lambda item: f"lost {item}"))
    assert results == [[10, 20, 30], [40, "lost 5", 60], [70]]


def time_out(chunk):
    raise TimeoutError("a write to the shared file system timed out")


time_out.__module__ = "__main__"


def test_a_task_that_times_out_is_its_own_error(cluster):
    """The wait for a chunk times out every second to look for workers: a task's own
    TimeoutError (ETIMEDOUT from a shared file system) was taken for one, and the client
    looked for workers in a busy loop, for ever."""
    from features.app.cluster import map_in_order

    with distributed.Client(cluster["address"]) as client:
        client.wait_for_workers(2, timeout=120)
        started = time.time()
        with pytest.raises(TimeoutError, match="shared file system timed out"):
            list(map_in_order(client, time_out, [[1]]))
    assert time.time() - started < 10


def recurse(chunk):
    def deeper(depth):
        return deeper(depth + 1)
    return deeper(0)


recurse.__module__ = "__main__"


def test_a_task_that_recurses_too_deep_is_its_own_error(cluster):
    """Dask cannot send the traceback of a RecursionError back: the task never ended, and the
    run waited for ever with its workers alive."""
    from features.app.cluster import map_in_order

    raised = []

    def run():
        with distributed.Client(cluster["address"]) as client:
            try:
                list(map_in_order(client, recurse, [[1]]))
            except Exception as exc:
                raised.append(exc)

    waiting = threading.Thread(target=run, daemon=True)
    waiting.start()
    waiting.join(timeout=60)
    assert not waiting.is_alive(), "the run still waits for the task"
    assert [(type(exc), str(exc)) for exc in raised] == [(RecursionError, "maximum recursion depth exceeded")]


def test_train_extracts_features_on_the_cluster(cluster, tmp_path):
    common = [sys.executable, str(ROOT / "train.py"), "--limit", "240", "--n-splits", "3",
              "--n-estimators", "30", "--no-plots", "--n-jobs", "1"]
    local = subprocess.run(common + ["--out", str(tmp_path / "local")], capture_output=True, text=True, cwd=ROOT)
    remote = subprocess.run(common + ["--out", str(tmp_path / "remote"), "--scheduler", cluster["address"]],
                            capture_output=True, text=True, cwd=ROOT)
    assert local.returncode == remote.returncode == 0, remote.stderr
    reports = [json.loads((tmp_path / side / "cv_report.json").read_text())["labels"] for side in ("local", "remote")]
    assert reports[0] == reports[1]
    assert len(list((tmp_path / "remote" / "feature-cache").rglob("*.npy"))) >= 4 * 200


@pytest.mark.parametrize("killed", ["worker", "scheduler"])
def test_train_whose_cluster_goes_away_is_one_line_and_writes_no_model(killed, tmp_path):
    """train.py's extraction went through joblib's Dask backend, which waited, silent, for a
    worker for ever (on a worker of two threads; of one, joblib ran it all here), and a lost
    scheduler printed Dask's traceback; it now runs as recommend.py's photos do: one line, once
    the cluster has had no worker for WORKERS_SECONDS or at once for the scheduler, and no
    model is written."""
    from features.app.cluster import WORKERS_SECONDS

    scheduler, address = start_scheduler(tmp_path, [BIN / "dask", "scheduler"], checkout_env())
    worker, process = None, None
    out, stderr = tmp_path / "out", tmp_path / "stderr.txt"
    try:
        worker, _ = start_worker(tmp_path, address, "leaving", checkout_env(), threads=2)
        with open(stderr, "w") as err:
            process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--limit", "240", "--n-splits", "3",
                                        "--n-estimators", "30", "--no-plots", "--out", str(out),
                                        "--scheduler", address], stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        deadline = time.time() + 120
        while next(out.glob("feature-cache/**/*.npy"), None) is None:  # the worker has begun
            assert process.poll() is None and time.time() < deadline, stderr.read_text()
            time.sleep(0.1)
        {"worker": worker, "scheduler": scheduler}[killed].kill()
        left = time.time()
        process.wait(timeout=WORKERS_SECONDS + 90)
        waited = time.time() - left
    finally:
        kill_if_running(process)
        if worker is not None:
            stop(worker)
        scheduler.kill()
        scheduler.wait()
    assert process.returncode == 1
    assert not (out / "model.joblib").exists()
    if killed == "worker":
        assert stderr.read_text().splitlines() == [f"train.py: error: {address}: every worker left and none "
                                                   f"joined in {WORKERS_SECONDS} s"]
        assert WORKERS_SECONDS <= waited < WORKERS_SECONDS + 30
    else:
        assert stderr.read_text().splitlines() == [f"train.py: error: {address}: the scheduler went away "
                                                   "(connection lost)"]
        assert waited < 30


CRASH_ON = """
import os

import features.vision.transformer as transformer

read = getattr(transformer.as_rgb, "__wrapped__", transformer.as_rgb)  # Dask may run this twice


def crash_on(image):
    if str(image).endswith({name!r}):
        os._exit(1)
    return read(image)


crash_on.__wrapped__ = read
transformer.as_rgb = crash_on
"""


def test_train_leaves_out_a_photo_that_keeps_killing_its_worker(celeba_paths, tmp_path):
    """A photo whose reading kills the worker (a crash in a decoder) is rerun elsewhere, then
    alone, then left out with a warning; its reason is the report's, not "no face found", and
    the model is trained on the rest.  The crash is the worker's own, put there by a Dask
    preload script that wraps the photo reader of the extractor."""
    poison = Path(celeba_paths[7])
    preload = tmp_path / "crash_on_photo.py"
    preload.write_text(CRASH_ON.format(name=poison.name))
    scheduler, address = start_scheduler(tmp_path, [BIN / "dask", "scheduler"], checkout_env())
    workers = subprocess.Popen([BIN / "dask", "worker", address, "--nworkers", "2", "--nthreads", "1",
                                "--host", "127.0.0.1", "--no-dashboard", "--preload", str(preload)],
                               env=checkout_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / "out"
    try:
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
        result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--limit", "240", "--n-splits", "3",
                                 "--n-estimators", "30", "--no-plots", "--out", str(out), "--scheduler", address],
                                capture_output=True, text=True, cwd=ROOT, timeout=600)
    finally:
        stop(workers, scheduler)
    assert result.returncode == 0, result.stderr
    assert f"train.py: warning: {poison}: the worker died while extracting its features; left out" in \
        result.stderr.splitlines()
    skipped = json.loads((out / "cv_report.json").read_text())["skipped"]
    assert {"filename": str(poison), "reason": "the worker died while extracting its features"} in skipped
    assert (out / "model.joblib").exists()


@pytest.mark.parametrize("address, message", [
    ("tls://127.0.0.1:8786", "tls:// is not supported: give the scheduler's tcp:// address"),
    ("inproc://x:1", "inproc:// is not supported: give the scheduler's tcp:// address"),
    ("tcp://127.0.0.1:99999", "port 99999 is not from 1 to 65535"),
])
def test_an_address_this_tool_cannot_use_is_a_usage_error(trained, address, message):
    """Dask's client failed there with a TypeError or ValueError, then waited 40 s at exit (or
    took port 99999 for 34463)."""
    result = recommend(trained, LFW / "Yusuf_Misbac_0001.jpg", "--scheduler", address)
    assert result.returncode == 2 and result.stderr.splitlines()[-1] == (
        f"recommend.py: error: argument --scheduler: {message}")


def test_a_worker_address_is_one_clear_line(trained, cluster):
    """A worker's address (every worker's log shows it) given for the scheduler's."""
    with distributed.Client(cluster["address"]) as client:
        worker = next(iter(client.scheduler_info()["workers"]))
    result = recommend(trained, LFW / "Yusuf_Misbac_0001.jpg", "--scheduler", worker)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"recommend.py: error: {worker}: a Dask worker, not the scheduler\n"


def test_a_scheduler_without_workers_is_one_clear_line(trained, tmp_path):
    """The run waited, silent, for ever; now a first worker has WORKERS_SECONDS to join."""
    from features.app.cluster import WORKERS_SECONDS

    scheduler, address = start_scheduler(tmp_path, [BIN / "dask", "scheduler"], dict(os.environ))
    try:
        result = recommend(trained, LFW / "Yusuf_Misbac_0001.jpg", "--scheduler", address)
    finally:
        stop(scheduler)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"recommend.py: error: {address}: the scheduler has no workers "
                             f"(none joined in {WORKERS_SECONDS} s)\n")


def test_a_scheduler_that_goes_away_mid_run_is_one_line_and_keeps_the_answers(trained, photos, tmp_path):
    """The photos of a lost scheduler's cancelled tasks were sent again, one at a time, to a
    client without a scheduler: the run hung.  Now it ends with one line, and the photos
    answered stay printed and in the Parquet file."""
    scheduler, address = start_scheduler(tmp_path, [BIN / "dask", "scheduler"], dict(os.environ))
    worker = subprocess.Popen([BIN / "dask", "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                               "--no-dashboard", "--no-nanny"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    output = tmp_path / "answered.parquet"
    process = None
    try:
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=120)
        process, stdout, stderr = start_recommend(trained, photos, output, address, tmp_path)
        scheduler.kill()
        process.wait(timeout=120)
    finally:
        kill_if_running(process)
        stop(worker)
        scheduler.kill()
        scheduler.wait()
    records = [json.loads(line) for line in stdout.read_text().splitlines()]
    assert process.returncode == 1 and 2 <= len(records) < 26
    assert stderr.read_text().splitlines() == [f"recommend.py: error: {address}: the scheduler went away "
                                               "(connection lost)"]
    assert pd.read_parquet(output)["image"].drop_duplicates().tolist() == [r["image"] for r in records]
