use http::Method;
use serde_json::json;

use crate::helpers::TestApp;

async fn send(
    t: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, serde_json::Value) {
    let r = t.client.send(method, &t.url(path), headers, body).await;
    let status = r.status.as_u16();
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{path}: {}",
        r.text()
    );
    (status, r.json())
}

#[tokio::test]
async fn every_error_status_has_a_stable_json_body() {
    let t = TestApp::spawn().await;
    let json_ct = [("content-type", "application/json")];
    type Case<'a> = (
        Method,
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/v1/login",
            json_ct.to_vec(),
            b"{not json".to_vec(),
            400,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/login",
            json_ct.to_vec(),
            b"[]".to_vec(),
            400,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/login",
            json_ct.to_vec(),
            br#"{"username":"a"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/login",
            json_ct.to_vec(),
            br#"{"username":"a","password":"b","x":1}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/login",
            vec![("content-type", "text/plain")],
            br#"{"username":"a","password":"b"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/v1/login",
            vec![],
            br#"{"username":"a","password":"b"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/v1/login",
            json_ct.to_vec(),
            vec![b' '; 70 * 1024],
            413,
            "payload_too_large",
        ),
        (
            Method::POST,
            "/v1/refresh",
            json_ct.to_vec(),
            br#"{"refresh_token":7}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (Method::GET, "/v1/nope", vec![], vec![], 404, "not_found"),
        (
            Method::GET,
            "/v1/login",
            vec![],
            vec![],
            405,
            "method_not_allowed",
        ),
        (
            Method::DELETE,
            "/.well-known/jwks.json",
            vec![],
            vec![],
            405,
            "method_not_allowed",
        ),
        (Method::GET, "/v1/me", vec![], vec![], 401, "unauthorized"),
        (
            Method::GET,
            "/v1/me",
            vec![("authorization", "Bearer x.y.z")],
            vec![],
            401,
            "invalid_token",
        ),
        (
            Method::GET,
            "/v1/me",
            vec![("authorization", "Bearer a"), ("authorization", "Bearer b")],
            vec![],
            400,
            "invalid_request",
        ),
        (
            Method::POST,
            "/v1/logout",
            vec![],
            vec![],
            401,
            "unauthorized",
        ),
    ];
    for (method, path, headers, body, status, error) in cases {
        let (got, body) = send(&t, method.clone(), path, &headers, &body).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        assert_eq!(body["error"], error, "{method} {path}");
        assert!(body["error_description"].is_string());
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "nothing more than error and description"
        );
    }
}

#[tokio::test]
async fn a_missing_token_gets_a_challenge_without_an_error_code() {
    let t = TestApp::spawn().await;
    let r = t.client.get(&t.url("/v1/me"), &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"wristband\"")
    );
}

#[tokio::test]
async fn huge_and_hostile_credentials_are_refused_cleanly() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let long = "p".repeat(2000);
    let r = t.login("alice", &long).await;
    assert_eq!(r.status, 401);
    let r = t
        .post_json(
            "/v1/login",
            &json!({"username": "a\u{0000}b", "password": "x"}),
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
}

/// Every rejection an extractor or a layer can make is the same JSON body, never text.
#[tokio::test]
async fn rejections_of_every_kind_are_the_json_error_body() {
    let t = TestApp::spawn().await;
    t.add_user("rita", "user").await;
    let (at, _) = t.tokens("rita").await;
    let bearer = format!("Bearer {at}");
    let auth = [("authorization", bearer.as_str())];
    let form_ct = ("content-type", "application/x-www-form-urlencoded");
    type Case<'a> = (Method, &'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        // A path parameter that is not UTF-8.
        (
            Method::DELETE,
            "/v1/sessions/%FF",
            auth.to_vec(),
            vec![],
            400,
        ),
        (
            Method::DELETE,
            "/v1/sessions/%C3%28",
            auth.to_vec(),
            vec![],
            400,
        ),
        // A query that does not parse.
        (
            Method::GET,
            "/v1/revocations?after=abc",
            vec![],
            vec![],
            400,
        ),
        (
            Method::GET,
            "/v1/revocations?after=%FF",
            vec![],
            vec![],
            400,
        ),
        // A form that is too large, of the wrong type, or not a form.
        (
            Method::POST,
            "/oauth2/token",
            vec![form_ct],
            vec![b'a'; 70 * 1024],
            413,
        ),
        (
            Method::POST,
            "/oauth2/token",
            vec![("content-type", "application/json")],
            b"{}".to_vec(),
            400,
        ),
        // An optional JSON body that is too large or of the wrong type.
        (
            Method::POST,
            "/v1/logout",
            [auth.as_slice(), &[("content-type", "application/json")]].concat(),
            vec![b' '; 70 * 1024],
            413,
        ),
        (
            Method::POST,
            "/v1/logout",
            [auth.as_slice(), &[("content-type", "text/plain")]].concat(),
            b"x".to_vec(),
            415,
        ),
        // Made-up methods, on a route and off it.
        (
            Method::from_bytes(b"BREW").unwrap(),
            "/v1/me",
            vec![],
            vec![],
            405,
        ),
        (
            Method::from_bytes(b"BREW").unwrap(),
            "/nowhere",
            vec![],
            vec![],
            404,
        ),
        (Method::GET, "/v1/sessions/a/b", auth.to_vec(), vec![], 404),
    ];
    for (method, path, headers, body, status) in cases {
        let (got, body) = send(&t, method.clone(), path, &headers, &body).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        assert!(body["error"].is_string(), "{method} {path}: {body}");
        assert!(
            body["error_description"].is_string(),
            "{method} {path}: {body}"
        );
    }
}
