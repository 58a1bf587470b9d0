#!/usr/bin/env bash
# Installs what the second-factor tests check Wristband against: pyotp (PyPI), an
# independent TOTP implementation whose codes the server must accept. Uses what is there.
set -euo pipefail
have_pyotp() { python3 -c 'import pyotp' >/dev/null 2>&1; }
if ! have_pyotp; then
  echo "installing pyotp"
  python3 -m pip install --quiet pyotp==2.9.0 ||
    python3 -m pip install --quiet --break-system-packages pyotp==2.9.0
fi
python3 -c 'import pyotp; print("mfa: pyotp", pyotp.__version__ if hasattr(pyotp, "__version__") else "installed")'
