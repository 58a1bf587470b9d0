#!/usr/bin/env bash
# The C libraries the build links besides what the crates vendor: OpenSSL's headers and
# pkg-config, for webauthn-rs (passkeys). Installs Debian's packages when missing.
set -euo pipefail
if pkg-config --exists openssl 2>/dev/null; then
  echo "build: openssl $(pkg-config --modversion openssl) (pkg-config)"
  exit 0
fi
echo "installing libssl-dev and pkg-config"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libssl-dev pkg-config
pkg-config --exists openssl
echo "build: openssl $(pkg-config --modversion openssl) (pkg-config)"
