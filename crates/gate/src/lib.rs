//! The Wristband gate: a forward-auth decision service that reverse proxies ask before
//! every request (nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`,
//! Envoy `ext_authz`), verifying tokens locally with `wristband-verify`.

#![forbid(unsafe_code)]
