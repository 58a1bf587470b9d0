//! Keys fetched over the network: `token verify --jwks URL` over http and over https
//! with a private CA (`--cacert`), and the example API service with `--cacert`.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::Value;
use tempfile::TempDir;
use wristband_jose::Algorithm;

use crate::tokens::{assert_exit, stderr, stdout, verify, GeneratedKey, AUD, ISS, NOW};

#[test]
fn verify_fetches_the_jwks_over_http() {
    let key = GeneratedKey::new(Algorithm::RS256);
    let token = key.sign(&[]);
    let jwks = fs::read_to_string(key.path("jwks.json")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut paths = Vec::new();
        for (status, body) in [("200 OK", jwks.as_str()), ("404 Not Found", "")] {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "request ended early");
                request.extend_from_slice(&buf[..n]);
            }
            let line = String::from_utf8_lossy(&request)
                .lines()
                .next()
                .unwrap()
                .to_owned();
            paths.push(line);
            write!(
                conn,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
        paths
    });
    let o = verify(&token, &["--jwks", &url], &[]);
    assert_exit(&o, 0);
    let claims: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(claims["sub"], "user-7f3a");
    // A failed fetch is an error of the tool (2), not a verdict on the token (1).
    let o = verify(&token, &["--jwks", &url], &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("404"), "{}", stderr(&o));
    let paths = server.join().unwrap();
    assert_eq!(paths, ["GET /jwks.json HTTP/1.1"; 2]);
}

/// A test CA, and a certificate it issued for 127.0.0.1 with its key, as PEM.
fn test_ca() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Wristband test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_pem, leaf.pem(), key.serialize_pem())
}

/// Serves `body` over HTTPS to each of `connections` connections in turn, with a
/// certificate of a fresh test CA; returns the URL, the CA certificate (PEM) and the
/// request lines of the connections whose handshake completed.
fn https_jwks_server(
    body: String,
    connections: usize,
) -> (String, String, std::thread::JoinHandle<Vec<String>>) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;
    use tokio_rustls::rustls;

    let (ca, cert, key) = test_ca();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/jwks.json", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for _ in 0..connections {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            // A client that refuses the certificate ends the handshake: no request.
            while !request.ends_with(b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(n) if n > 0 => request.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            if !request.ends_with(b"\r\n\r\n") {
                continue;
            }
            let line = String::from_utf8_lossy(&request)
                .lines()
                .next()
                .unwrap()
                .to_owned();
            lines.push(line);
            write!(
                tls,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
        lines
    });
    (url, ca, server)
}

#[test]
fn verify_fetches_the_jwks_over_https_trusting_a_given_ca() {
    let key = GeneratedKey::new(Algorithm::ES256);
    let token = key.sign(&[]);
    let jwks = fs::read_to_string(key.path("jwks.json")).unwrap();
    let (url, ca, server) = https_jwks_server(jwks, 2);
    // Not trusted by the system roots: refused, as an error of the tool (2), naming why.
    let o = verify(&token, &["--jwks", &url], &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("certificate"), "{}", stderr(&o));
    // Trusted through --cacert: fetched and verified.
    let dir = TempDir::new().unwrap();
    let ca_file = dir.path().join("ca.pem");
    fs::write(&ca_file, ca).unwrap();
    let o = verify(
        &token,
        &["--jwks", &url, "--cacert", ca_file.to_str().unwrap()],
        &[],
    );
    assert_exit(&o, 0);
    let claims: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(claims["sub"], "user-7f3a");
    assert_eq!(server.join().unwrap(), ["GET /jwks.json HTTP/1.1"]);
}

/// The example API service fetches its keys over https from a server whose certificate a
/// private CA issued, trusting the CA given with `--cacert`, and verifies a token with them.
#[tokio::test]
async fn api_service_trusts_a_private_ca_given_with_cacert() {
    let key = GeneratedKey::new(Algorithm::ES256);
    let token = key.sign(&[]);
    let jwks = fs::read_to_string(key.path("jwks.json")).unwrap();
    let (url, ca, server) = https_jwks_server(jwks, 1);
    let dir = TempDir::new().unwrap();
    let ca_file = dir.path().join("ca.pem");
    fs::write(&ca_file, ca).unwrap();
    let now = (NOW + 1).to_string();
    let api = wristband_testkit::process::ServiceProcess::spawn(
        &crate::api_service_binary(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            ISS,
            "--audience",
            AUD,
            "--jwks",
            &url,
            "--cacert",
            ca_file.to_str().unwrap(),
            "--now",
            &now,
        ],
    )
    .await;
    let r = wristband_testkit::http::Client::new()
        .get_bearer(&api.url("/resource"), &token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["sub"], "user-7f3a");
    let lines = tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    assert_eq!(lines, ["GET /jwks.json HTTP/1.1"]);
    // Logs written to a pipe carry no colour codes.
    let logs = api.logs();
    assert!(!logs.is_empty());
    assert!(
        logs.iter().all(|l| !l.contains('\u{1b}')),
        "ANSI codes in redirected logs: {logs:?}"
    );
}
