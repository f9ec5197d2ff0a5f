#!/usr/bin/env bash
# Installs the notices' test peers into tests/notify/.venv when missing: aiosmtpd, a real SMTP server
# that the e2e tests start on 127.0.0.1 (tests/tests/e2e/notices.rs). Idempotent; prints the venv's python.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
want="$(sed -n 's/^aiosmtpd==//p' "$here/requirements.txt")"
have="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("aiosmtpd"))' 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  echo "== installing aiosmtpd $want into $venv" >&2
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3 python3-venv
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
echo "$venv/bin/python"
