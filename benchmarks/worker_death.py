"""How long a worker's death holds a real serve.py: /api/health's answer times around it.

Starts ``serve.py --workers 2``, sends one request of LFW photos, kills both workers two
seconds in (as tests/test_web_api.py does) and asks /api/health every 20 ms meanwhile.  The
event loop answers every request: whatever the pool's restart does on it, every client waits
for.  Prints, per run, the slowest and the median answer from the kill to the request's end.

    python benchmarks/worker_death.py [--runs 3] [--photos 150]
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LFW = ROOT.parent / "shared" / "datasets" / "lfw-photos" / "images"


def health_times_around_a_death(photos):
    """(slowest, median) seconds of /api/health's answers from the workers' death to the end
    of the request they were analysing."""
    server = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), "--port", "0", "--workers", "2"],
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = next(f"http://{found[1]}" for line in server.stderr
                   if (found := re.search(r"http://(127\.0\.0\.1:\d+)/", line)))
        request = threading.Thread(target=httpx.post, args=(url + "/api/analyze",),
                                   kwargs={"files": [("photos", (p.name, p.read_bytes())) for p in photos],
                                           "timeout": 600})
        request.start()
        time.sleep(2)
        workers = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        killed, times = time.time(), []
        for worker in workers:
            os.kill(int(worker), signal.SIGKILL)
        while request.is_alive():
            asked = time.time()
            httpx.get(url + "/api/health", timeout=60)
            times.append(time.time() - asked)
            time.sleep(0.02)
        assert time.time() - killed > 1, "the request ended before the workers' death"
        return max(times), statistics.median(times)
    finally:
        server.terminate()
        server.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--photos", type=int, default=150, help="LFW photos in the request")
    args = parser.parse_args(argv)
    photos = sorted(LFW.glob("*.jpg"))[:args.photos]
    for run in range(1, args.runs + 1):
        slowest, median = health_times_around_a_death(photos)
        print(f"run {run}: /api/health after both workers' death: slowest {slowest:.3f} s, median {median:.3f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
