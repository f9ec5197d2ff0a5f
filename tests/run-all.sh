#!/usr/bin/env bash
# Runs every test of Vuoro: the Rust unit and end-to-end tests, the Debian package's checks, the checks of
# the kiosk and display PCs' setup script, then the browser tests in headless Chromium, then checks every
# WebSocket message their daemons sent against the AsyncAPI document.
# Installs what is missing first (Debian packages, npm packages for the browser tests, aiosmtpd for the
# notices' tests, cargo-deb).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust 1.88 or newer (https://rustup.rs) and run this again." >&2
  exit 1
fi

# Debian packages: Chromium for the browser tests, espeak-ng and sox for speech, fonts for printing, zbar.
pkgs=()
command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || pkgs+=(espeak-ng)
command -v sox >/dev/null 2>&1 || pkgs+=(sox)
command -v zbarimg >/dev/null 2>&1 || pkgs+=(zbar-tools) # reads the kiosk's QR code back in the browser tests
command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || pkgs+=(fonts-dejavu-core)
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || pkgs+=(fonts-wqy-microhei)
if [ ${#pkgs[@]} -gt 0 ]; then
  say "installing ${pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi

# promtool, for the alerting rules: Debian has it in the `prometheus` package, whose installation would
# also start a Prometheus server, so only promtool (one static binary) is taken out of it, into target/.
promtool="$(command -v promtool || echo target/tools/promtool)"
if [ ! -x "$promtool" ]; then
  say "fetching promtool (Debian package prometheus) into target/tools"
  mkdir -p target/tools/deb
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  (cd target/tools/deb && rm -f prometheus_*.deb &&
    { apt-get download prometheus || { $SUDO apt-get update -qq && apt-get download prometheus; }; })
  dpkg-deb --fsys-tarfile target/tools/deb/prometheus_*.deb | tar -xO ./usr/bin/promtool >target/tools/promtool
  chmod +x target/tools/promtool
fi

# aiosmtpd, the real SMTP server the notices' e2e tests start (tests/notify/.venv).
tests/notify/setup.sh >/dev/null

# npm packages for the browser tests (no browser download: Debian's Chromium is used), oidc-provider among
# them: the OpenID providers the single sign-on test starts.
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ] ||
  [ ! -d tests/browser/node_modules/oidc-provider ]; then
  say "installing npm packages for the browser tests"
  (cd tests/browser && npm ci --ignore-scripts --no-audit --no-fund)
fi

# Formatting first: unformatted code fails the run (rustfmt comes with rustup's default profile).
if cargo fmt --version >/dev/null 2>&1; then
  say "checking formatting"
  cargo fmt --all --check
fi
# Lints (clippy comes with rustup's default profile too): a warning fails the run.
if cargo clippy --version >/dev/null 2>&1; then
  say "lints"
  cargo clippy --workspace --all-targets -- -D warnings
fi
# The Prometheus alerting rules: valid, and their unit tests pass (the metric names they read are checked
# against the daemon's /metrics by the Rust tests).
say "monitoring rules (promtool)"
"$promtool" check rules monitoring/vuoro.rules.yml
"$promtool" test rules monitoring/vuoro.rules.test.yml

say "building"
cargo build --workspace --all-targets

# Every WebSocket message the daemons of the Rust and browser tests send is recorded here (one file per
# daemon) and checked against the AsyncAPI document after them.
ws_record="$PWD/target/ws-record"
rm -rf "$ws_record"
export VUORO_WS_RECORD_DIR="$ws_record"

say "Rust tests"
VUORO_REQUIRE_ESPEAK=1 cargo test --workspace

say "the Debian package: contents, lintian, systemd-analyze verify, the extracted daemon started (tests/package/check.sh)"
timeout 1200 tests/package/check.sh

say "the kiosk and display PCs' setup: pc/setup.sh into throwaway roots, its units, udev rule, policy (tests/pc/check.sh)"
timeout 600 tests/pc/check.sh

say "the daemon's /metrics, as the monitoring e2e test scraped it, against promtool's lint"
"$promtool" check metrics <target/tmp/metrics.txt

say "API contract tests (schemathesis against the OpenAPI document; installs it into tests/schemathesis/.venv)"
timeout 600 tests/schemathesis/run.sh

say "browser tests"
(cd tests/browser && node --test --test-concurrency=1 --test-timeout=600000 ./*.test.mjs)

say "WebSocket messages of the tests against the AsyncAPI document (jsonschema_rs from tests/schemathesis/.venv)"
tests/schemathesis/.venv/bin/python tests/asyncapi/validate.py crates/vuoro-protocol/asyncapi.json "$ws_record"
