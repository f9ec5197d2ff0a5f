"""Contract tests: schemathesis against the real daemon and its own OpenAPI document.

Starts target/debug/vuoro (built beforehand; this builds nothing) with the demo hall on a free loopback
port and a fresh data folder, signs in as the demo supervisor and the demo admin and fetches the demo
kiosk's device token (all before any anonymous run: failed logins lock an address out), then runs
schemathesis four times against /api/v1/openapi.json: anonymous, as the supervisor, as the admin, as
the kiosk (logout left out of the authenticated runs, so the sessions live on). Checks: no 5xx, documented status codes, content types
and response schemas; stateful links on. Stops the daemon at the end and exits non-zero if any run
failed. Run it through run.sh, which installs schemathesis first.

Environment: VUORO_BIN (default target/debug/vuoro), SCHEMATHESIS_MAX_EXAMPLES (default 25),
SCHEMATHESIS_SEED (default 1; "random" for a new one each run), SCHEMATHESIS_RUN_TIMEOUT (seconds per
run, default 75), SCHEMATHESIS_REPORT_DIR (JUnit reports; default tests/schemathesis/report).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def http(base, method, path, body=None, token=None):
    """One request; answers (status, parsed JSON or None)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            raw = res.read()
            status = res.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def start_daemon(binary, data):
    """The daemon on a free port (it prints the address it bound); answers (process, base URL)."""
    proc = subprocess.Popen(
        [str(binary), "serve", "--listen", "127.0.0.1:0", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "warn"},
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("Vuoro listening on "):
        proc.kill()
        sys.exit(f"the daemon did not start: {line!r}")
    base = line.split()[-1]
    # Keep reading its output so it never blocks on a full pipe.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if http(base, "GET", "/readyz")[0] == 200:
                return proc, base
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("the daemon did not become ready in 30 s")


def schemathesis(base, name, extra, report_dir):
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    seed = os.environ.get("SCHEMATHESIS_SEED", "1")
    cmd = [
        exe, "run", f"{base}/api/v1/openapi.json",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"),
        "--workers", "1",  # threads trip CPython 3.11.7 (ast.parse is not thread safe there)
        "--request-timeout", "20",
        "--continue-on-failure",
        "--suppress-health-check", "all",
        "--report", "junit",
        "--report-junit-path", str(report_dir / f"{name}.xml"),
        "--output-truncate", "false",
        *([] if seed == "random" else ["--seed", seed]),
        *extra,
    ]
    budget = int(os.environ.get("SCHEMATHESIS_RUN_TIMEOUT", "75"))
    print(f"\n--- schemathesis: {name} run (at most {budget} s)", flush=True)
    started = time.monotonic()
    try:
        # In this folder: schemathesis keeps its replay data in ./.schemathesis.
        code = subprocess.run(cmd, timeout=budget, cwd=HERE, env={**os.environ, "NO_COLOR": "1"}).returncode
    except subprocess.TimeoutExpired:
        print(f"--- {name}: did not finish in {budget} s", flush=True)
        code = 124
    print(f"--- {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
    return code


def main():
    binary = Path(os.environ.get("VUORO_BIN", ROOT / "target/debug/vuoro"))
    if not binary.exists():
        sys.exit(f"{binary} is missing: run `cargo build -p vuoro` first")
    data = Path(tempfile.mkdtemp(prefix="vuoro-schemathesis-"))
    report_dir = Path(os.environ.get("SCHEMATHESIS_REPORT_DIR", HERE / "report"))
    report_dir.mkdir(parents=True, exist_ok=True)
    proc, base = start_daemon(binary, data)
    results = {}
    try:
        # Credentials first: the anonymous run's wrong passwords lock this address out of signing in.
        status, session = http(base, "POST", "/api/v1/auth/login",
                               {"username": "supervisor", "password": "demo"})
        if status != 200:
            sys.exit(f"signing in as the demo supervisor failed: {status} {session}")
        status, admin = http(base, "POST", "/api/v1/auth/login",
                             {"username": "admin", "password": "demo"})
        if status != 200:
            sys.exit(f"signing in as the demo admin failed: {status} {admin}")
        status, device = http(base, "GET", "/api/v1/demo/device-token?device=kiosk-1")
        if status != 200:
            sys.exit(f"the demo kiosk token was refused: {status} {device}")
        runs = [
            ("anonymous", []),
            ("supervisor", ["-H", f"Authorization: Bearer {session['token']}",
                            "--exclude-path", "/auth/logout"]),
            ("admin", ["-H", f"Authorization: Bearer {admin['token']}",
                       "--exclude-path", "/auth/logout"]),
            ("kiosk", ["-H", f"Authorization: Bearer {device['token']}",
                       "--exclude-path", "/auth/logout"]),
        ]
        for name, extra in runs:
            results[name] = schemathesis(base, name, extra, report_dir)
        if proc.poll() is not None:
            print(f"the daemon exited during the runs (code {proc.returncode})")
            results["daemon"] = 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(f"\nJUnit reports: {report_dir}")
    failed = [n for n, c in results.items() if c != 0]
    for n, c in results.items():
        print(f"schemathesis {n}: {'passed' if c == 0 else f'FAILED (exit {c})'}")
    shutil.rmtree(data, ignore_errors=True)
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
