//! Loading, merging and checking the configuration.

use super::*;

#[test]
fn durations() {
    assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
    assert_eq!(
        parse_duration("14d").unwrap(),
        Duration::from_secs(14 * 86_400)
    );
    assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
    assert!(parse_duration("10x").is_err());
    assert!(parse_duration("m").is_err());
    assert_eq!(format_duration(Duration::from_secs(900)), "15m");
}

#[test]
fn the_example_file_lists_the_defaults() {
    let text = include_str!("../../../../wristband.example.toml");
    let c = Config::from_toml(text).unwrap();
    let d = Config::default();
    assert_eq!(format!("{c:?}"), format!("{d:?}"));
    // Every top-level setting is in the file, commented out or not.
    for key in [
        "listen",
        "data_dir",
        "database",
        "issuer",
        "audience",
        "alg",
        "client_id",
        "access_ttl",
        "refresh_idle_ttl",
        "refresh_absolute_ttl",
        "refresh_grace",
        "allow_registration",
        "jwks_max_age",
        "master_key_file",
        "key_rotation",
        "key_prepublish",
        "hs256_secret_file",
        "hash_concurrency",
        "memory_kib",
        "pair_free_failures",
        "max_delay",
        "window",
        "device_free_failures",
        "device_cookie_max_age",
        "registrations_per_ip",
        "cors_allowed_origins",
        "trusted_proxies",
        "public_url",
        "return_origins",
        "tls_cert",
        "tls_key",
        "header_read_timeout",
        "idle_timeout",
        "request_body_timeout",
        "max_connections",
        "backchannel_retry_window",
        "require_mfa_for_roles",
    ] {
        assert!(
            text.contains(&format!("{key} =")),
            "{key} missing from the example"
        );
    }
}

#[test]
fn unknown_keys_are_refused() {
    assert!(Config::from_toml("listen = \"127.0.0.1:9000\"\nbogus = 1").is_err());
    assert!(Config::from_toml("[argon2]\nmemroy_kib = 1").is_err());
    let c = Config::from_toml("access_ttl = \"5m\"\n[argon2]\nmemory_kib = 4096").unwrap();
    assert_eq!(c.access_ttl, Duration::from_secs(300));
    assert_eq!(c.argon2.memory_kib, 4096);
    assert_eq!(c.argon2.iterations, 2);
}

#[test]
fn the_loader_layers_defaults_file_environment_and_flags() {
    let dir = std::env::temp_dir().join(format!("wristband-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("w.toml");
    std::fs::write(
        &file,
        "access_ttl = \"5m\"\naudience = \"file\"\nalg = \"ES256\"\n",
    )
    .unwrap();
    let env = |name: &str| match name {
        "WRISTBAND_CONFIG" => Some(file.display().to_string()),
        "WRISTBAND_ACCESS_TTL" => Some("60m".into()),
        "WRISTBAND_AUDIENCE" => Some("env".into()),
        "WRISTBAND_KEY_ROTATION" => Some("7d".into()),
        "WRISTBAND_TRUSTED_PROXIES" => Some("10.0.0.0/8, 192.168.0.1".into()),
        "WRISTBAND_ISSUER" => Some(String::new()),
        _ => None,
    };
    let flags = Overrides {
        audience: Some("flag".into()),
        ..Overrides::default()
    };
    let c = Config::load(None, env, flags).unwrap();
    assert_eq!(c.alg, Algorithm::ES256, "from the file");
    assert_eq!(
        c.access_ttl,
        Duration::from_secs(3600),
        "the environment wins over the file"
    );
    assert_eq!(c.audience, "flag", "flags win over the environment");
    assert_eq!(c.key_rotation, Duration::from_secs(7 * 86_400));
    assert_eq!(c.trusted_proxies, ["10.0.0.0/8", "192.168.0.1"]);
    assert_eq!(c.issuer, None, "an empty variable is unset");
    let bad = |name: &'static str, value: &'static str| {
        let e = Config::load(
            None,
            |n: &str| (n == name).then(|| value.to_owned()),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.message().contains(name), "{e}");
    };
    bad("WRISTBAND_ACCESS_TTL", "an hour");
    bad("WRISTBAND_ALG", "none");
    bad("WRISTBAND_LISTEN", "port 80");
    bad("WRISTBAND_ALLOW_REGISTRATION", "maybe");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_public_url_and_return_origins_are_loaded_and_checked() {
    let env = |name: &str| match name {
        "WRISTBAND_PUBLIC_URL" => Some("https://app.example.com/auth/".into()),
        "WRISTBAND_RETURN_ORIGINS" => {
            Some("https://app.example.com, https://docs.example.com:8443".into())
        }
        _ => None,
    };
    let c = Config::load(None, env, Overrides::default()).unwrap();
    let public = c.public_url();
    assert_eq!(public.origin(), "https://app.example.com");
    assert_eq!(public.prefix(), "/auth");
    assert_eq!(
        c.return_origins(),
        ["https://app.example.com", "https://docs.example.com:8443"]
    );
    // A flag wins over the environment.
    let flags = Overrides {
        public_url: Some("https://other.example.com/x".into()),
        return_origins: Some(vec!["https://other.example.com".into()]),
        ..Overrides::default()
    };
    let c = Config::load(None, env, flags).unwrap();
    assert_eq!(c.public_url().prefix(), "/x");
    assert_eq!(c.return_origins(), ["https://other.example.com"]);

    // Defaults: the issuer's origin, no prefix, and that origin as the only target.
    let c = Config {
        issuer: Some("https://id.example.com/tenant".into()),
        ..Config::default()
    };
    assert_eq!(c.public_url().origin(), "https://id.example.com");
    assert_eq!(c.public_url().prefix(), "");
    assert_eq!(c.return_origins(), ["https://id.example.com"]);
    let c = Config {
        public_url: Some("https://app.example.com/auth".into()),
        ..Config::default()
    };
    assert_eq!(c.return_origins(), ["https://app.example.com"]);

    for (name, value) in [
        ("WRISTBAND_PUBLIC_URL", "/auth"),
        ("WRISTBAND_PUBLIC_URL", "https://app.example.com/auth?x"),
        ("WRISTBAND_RETURN_ORIGINS", "https://app.example.com/path"),
        ("WRISTBAND_RETURN_ORIGINS", "app.example.com"),
    ] {
        let e = Config::load(
            None,
            |n: &str| (n == name).then(|| value.to_owned()),
            Overrides::default(),
        )
        .unwrap_err();
        let key = name.trim_start_matches("WRISTBAND_").to_lowercase();
        assert!(e.message().contains(&key), "{name}={value}: {e}");
    }
}

#[test]
fn ranges_are_checked() {
    let ok = Config::default();
    ok.validate().unwrap();
    for bad in [
        Config {
            access_ttl: Duration::from_secs(59),
            ..Config::default()
        },
        Config {
            access_ttl: Duration::from_secs(3601),
            ..Config::default()
        },
        Config {
            refresh_grace: Duration::from_secs(61),
            ..Config::default()
        },
        Config {
            refresh_idle_ttl: Duration::from_secs(31 * 86_400),
            ..Config::default()
        },
        Config {
            header_read_timeout: Duration::ZERO,
            ..Config::default()
        },
        Config {
            idle_timeout: Duration::ZERO,
            ..Config::default()
        },
        Config {
            request_body_timeout: Duration::ZERO,
            ..Config::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
    let c = Config::default().apply(Overrides {
        access_ttl: Some(Duration::from_secs(120)),
        ..Overrides::default()
    });
    assert_eq!(c.access_ttl, Duration::from_secs(120));
}
