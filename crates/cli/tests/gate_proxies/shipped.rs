//! The shipped configurations name every decision header where they must: removed from
//! the client's request, and copied from the gate's answer. nginx and Caddy also run in
//! the other tests; Traefik and Envoy cannot be installed here, so for them this check
//! (and a YAML parse) is all there is.

use wristband_testkit::proxies::{self, repo_path, Tool};

/// The gate's decision headers under their default names.
const DECISION: [&str; 9] = [
    "X-Auth-Request-User",
    "X-Auth-Request-Role",
    "X-Auth-Request-Scope",
    "X-Auth-Request-Session",
    "X-Auth-Request-Client",
    "X-Auth-Request-Amr",
    "X-Auth-Request-Access-Token",
    "Remote-User",
    "Remote-Groups",
];

/// Original-request headers only a proxy may set.
const ORIGINAL: [&str; 3] = ["X-Original-URL", "X-Original-URI", "X-Original-Method"];

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_path(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `text` has a line that, trimmed, equals `line`.
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim() == line)
}

#[test]
fn nginx_sets_every_decision_header_from_the_gate_only() {
    let conf = read("deploy/nginx/wristband.conf");
    for name in DECISION {
        let var = format!("$upstream_http_{}", name.to_lowercase().replace('-', "_"));
        let kept = conf
            .lines()
            .find(|l| {
                l.trim().starts_with("auth_request_set") && l.trim().ends_with(&format!("{var};"))
            })
            .unwrap_or_else(|| panic!("nginx: no auth_request_set for {name} ({var})"));
        let wb = kept.split_whitespace().nth(1).unwrap();
        assert!(
            conf.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w == ["proxy_set_header", name, &format!("{wb};")]
            }),
            "nginx: {name} is not set from {wb} towards the app"
        );
    }
    for name in ORIGINAL {
        assert!(
            conf.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w == ["proxy_set_header", name, "\"\";"]
            }),
            "nginx: {name} is not removed towards the app"
        );
    }
    assert!(conf.contains("proxy_pass_request_body off;"));
    assert!(conf.contains("proxy_set_header X-Original-URL    $scheme://$http_host$request_uri;"));
    assert!(conf.contains("error_page 401 = @wristband_401;"));
    assert!(conf.contains("auth_request_set $wb_location      $upstream_http_location;"));
}

#[test]
fn caddy_strips_copies_and_cleans_every_decision_header() {
    let file = read("deploy/caddy/Caddyfile");
    for line in [
        "request_header -X-Auth-Request-*",
        "request_header -Remote-User",
        "request_header -Remote-Groups",
        "request_header -X-Original-*",
        "uri /authz/forward",
    ] {
        assert!(has_line(&file, line), "Caddyfile: no `{line}`");
    }
    let copy = file
        .lines()
        .find(|l| l.trim().starts_with("copy_headers "))
        .expect("Caddyfile: no copy_headers");
    for name in DECISION {
        assert!(
            copy.split_whitespace().any(|w| w == name),
            "Caddyfile: {name} not in copy_headers"
        );
        assert!(
            file.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.len() == 4 && w[1] == "header_regexp" && w[2] == name
            }),
            "Caddyfile: no placeholder clean-up for {name}"
        );
    }
}

#[test]
fn traefik_strips_and_copies_every_decision_header() {
    let dynamic = read("deploy/traefik/dynamic.yml");
    for name in DECISION.iter().chain(ORIGINAL.iter()) {
        assert!(
            has_line(&dynamic, &format!("{name}: \"\"")),
            "traefik: {name} is not removed by the strip-identity middleware"
        );
    }
    for name in DECISION {
        assert!(
            has_line(&dynamic, &format!("- {name}")),
            "traefik: {name} not in authResponseHeaders"
        );
    }
    for line in [
        "address: \"http://127.0.0.1:8181/authz/forward\"",
        "trustForwardHeader: false",
        "middlewares: [strip-identity, wristband-gate]",
        "middlewares: [strip-identity, auth-prefix]",
    ] {
        assert!(has_line(&dynamic, line), "traefik: no `{line}`");
    }
}

#[test]
fn envoy_strips_and_copies_every_decision_header() {
    let envoy = read("deploy/envoy/envoy.yaml");
    for name in DECISION.iter().chain(ORIGINAL.iter()) {
        let lower = name.to_lowercase();
        assert!(
            has_line(&envoy, &format!("- remove: {lower}")),
            "envoy: {lower} is not removed early"
        );
    }
    for name in DECISION {
        let lower = name.to_lowercase();
        assert!(
            has_line(&envoy, &format!("- exact: {lower}")),
            "envoy: {lower} not in allowed_upstream_headers"
        );
    }
    for line in [
        "path_prefix: /authz/ext-authz",
        "failure_mode_allow: false",
        "- exact: location",
        "- exact: www-authenticate",
        "- exact: cookie",
        "disabled: true",
    ] {
        assert!(has_line(&envoy, line), "envoy: no `{line}`");
    }
}

/// The Traefik and Envoy files are YAML (parsed by Python's PyYAML, which `.ci/gate.sh`
/// installs): the one check of their syntax that can run here.
#[test]
fn traefik_and_envoy_files_are_yaml() {
    let test = "gate_proxies::shipped::traefik_and_envoy_files_are_yaml";
    if !proxies::available(test, &[Tool::PyYaml]) {
        return;
    }
    for file in [
        "deploy/traefik/traefik.yml",
        "deploy/traefik/dynamic.yml",
        "deploy/envoy/envoy.yaml",
    ] {
        let out = std::process::Command::new(proxies::PYTHON)
            .args([
                "-c",
                "import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert isinstance(d, dict), type(d)",
            ])
            .arg(repo_path(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file} is not a YAML mapping:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
