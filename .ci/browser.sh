#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver (chromedriver) are installed, for the
# browser tests: uses the ones that are there, or installs Debian's packages.
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
