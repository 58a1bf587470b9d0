#!/usr/bin/env bash
# Makes sure the gate's proxy tests can run: nginx (Debian's nginx-light, with the
# auth_request module) and Caddy from Debian packages, and Flask for the example upstream
# (and PyYAML, to parse the Traefik and Envoy files) from PyPI. Uses what is there;
# installs only what is missing; one line when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

have_nginx() { [ -x /usr/sbin/nginx ]; }
have_caddy() { [ -x /usr/bin/caddy ]; }
have_flask() { python3 -c 'import flask' >/dev/null 2>&1; }
have_yaml() { python3 -c 'import yaml' >/dev/null 2>&1; }

packages=()
have_nginx || packages+=(nginx-light)
have_caddy || packages+=(caddy)
command -v python3 >/dev/null 2>&1 || packages+=(python3 python3-pip)

if [ "${#packages[@]}" -gt 0 ]; then
    echo "installing ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    # The packages' own services are not wanted: the tests start nginx and Caddy themselves.
    $sudo_cmd apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    for service in nginx caddy; do
        $sudo_cmd systemctl disable --now "$service" >/dev/null 2>&1 || true
    done
fi

if ! have_flask; then
    echo "installing Flask"
    python3 -m pip install --quiet -r examples/flask-upstream/requirements.txt ||
        python3 -m pip install --quiet --break-system-packages -r examples/flask-upstream/requirements.txt
fi

# PyYAML: the shipped Traefik and Envoy files are parsed as YAML by the tests.
if ! have_yaml; then
    echo "installing PyYAML"
    python3 -m pip install --quiet pyyaml ||
        python3 -m pip install --quiet --break-system-packages pyyaml
fi

missing=()
have_nginx || missing+=(nginx)
have_caddy || missing+=(caddy)
have_flask || missing+=(flask)
have_yaml || missing+=(pyyaml)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "still missing after the install: ${missing[*]}" >&2
    exit 1
fi
echo "gate: $(/usr/sbin/nginx -v 2>&1); caddy $(/usr/bin/caddy version | cut -d' ' -f1); flask $(python3 -c 'import importlib.metadata as m; print(m.version("flask"))')"
