"""Photos per second of recommend.py on a Dask cluster of 1 and 2 workers on this machine.

Starts `dask scheduler` and `dask worker --nworkers N --nthreads 1` on loopback, as the README
shows, runs `recommend.py FOLDER --json --scheduler ADDRESS` (client start included, workers
already warm after a first photo) and prints the figures.

    python benchmarks/cluster_bench.py [--photos 300]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LFW = ROOT.parent / "shared" / "datasets" / "lfw-photos" / "images"
BIN = Path(sys.executable).parent


def start_cluster(workers, folder):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    scheduler_file = folder / f"scheduler-{workers}.json"
    scheduler = subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", scheduler_file],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (scheduler_file.exists() and scheduler_file.stat().st_size):
        time.sleep(0.1)
    address = json.loads(scheduler_file.read_text())["address"]
    pool = subprocess.Popen([BIN / "dask", "worker", address, "--nworkers", str(workers), "--nthreads", "1",
                             "--host", "127.0.0.1", "--no-dashboard"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from distributed import Client
    with Client(address) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, (pool, scheduler)


def main():
    from features.model.model_io import MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--model", type=Path, default=MODEL)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    photos = sorted(LFW.glob("*.jpg"))[:args.photos]
    for photo in photos:
        shutil.copy(photo, folder)
    results = {}
    for workers in (1, 2):
        address, processes = start_cluster(workers, folder)
        recommend = [sys.executable, str(ROOT / "recommend.py"), "--model", str(args.model), "--json",
                     "--scheduler", address]
        subprocess.run(recommend + [str(photos[0])], capture_output=True, check=False)  # warm the workers
        started = time.perf_counter()
        subprocess.run(recommend + [str(folder)], capture_output=True, check=False)
        seconds = time.perf_counter() - started
        results[workers] = {"seconds": round(seconds, 1), "photos_per_s": round(len(photos) / seconds, 1)}
        print(f"{workers} worker(s): {len(photos)} photos in {seconds:.1f} s, {len(photos) / seconds:.1f} photos/s")
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    shutil.rmtree(folder, ignore_errors=True)
    out = ROOT / "benchmarks" / "cluster_results.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
