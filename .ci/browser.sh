#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver (chromedriver) are installed, for the
# browser tests: uses the ones that are there, or installs Debian's packages. Then installs
# axe-core, the accessibility engine of the hosted-page audit, at the version pinned in
# crates/cli/tests/browser/axe/package-lock.json (npm ci).
set -euo pipefail

have() { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }

if ! have; then
    echo "installing chromium and chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

if ! have; then
    echo "chromium or chromedriver is still missing after the install" >&2
    exit 1
fi
echo "browser: $(/usr/bin/chromium --version 2>/dev/null | head -n1); $(/usr/bin/chromedriver --version 2>/dev/null | head -n1)"

axe_dir="$(dirname "$0")/../crates/cli/tests/browser/axe"
if ! command -v npm >/dev/null; then
    echo "installing nodejs and npm"
    export DEBIAN_FRONTEND=noninteractive
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
(cd "$axe_dir" && npm ci --no-audit --no-fund >/dev/null)
axe_js="$axe_dir/node_modules/axe-core/axe.min.js"
if [ ! -f "$axe_js" ]; then
    echo "axe-core is still missing after npm ci in $axe_dir" >&2
    exit 1
fi
echo "axe-core: $(head -n1 "$axe_js" | sed 's/^[/*! ]*//')"
