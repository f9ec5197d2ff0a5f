#!/usr/bin/env bash
# Contract tests of the HTTP API with schemathesis (see run.py). Installs schemathesis into
# tests/schemathesis/.venv when it is missing or not the pinned version; builds nothing: run
# `cargo build -p vuoro` first. Bounded: four runs of at most SCHEMATHESIS_RUN_TIMEOUT s each.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
want="$(sed -n 's/^schemathesis==//p' "$here/requirements.txt")"
have="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  echo "== installing schemathesis $want into $venv"
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3 python3-venv
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
exec "$venv/bin/python" "$here/run.py" "$@"
