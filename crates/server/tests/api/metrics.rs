//! `/metrics` label values come only from fixed sets, whatever clients send.

use http::Method;

use crate::helpers::TestApp;

/// Made-up words from a small xorshift generator: distinct, and in no fixed set.
fn words(seed: u64, n: usize, len: usize) -> Vec<String> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from(b'A' + u8::try_from(x % 26).unwrap())
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn metric_labels_do_not_grow_with_methods_or_paths_clients_make_up() {
    let t = TestApp::spawn().await;
    let methods = words(0x9e37_79b9_7f4a_7c15, 200, 12);
    let paths = words(0x2545_f491_4f6c_dd1d, 200, 12);
    for (m, p) in methods.iter().zip(&paths) {
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        // An unknown method on a real route, and on an unmatched path.
        let r = t
            .client
            .send(method.clone(), &t.url("/v1/me"), &[], b"")
            .await;
        assert!(r.status.is_client_error(), "{m}: {}", r.status);
        let r = t
            .client
            .send(method, &t.url(&format!("/{p}")), &[], b"")
            .await;
        assert!(r.status.is_client_error(), "{m} /{p}: {}", r.status);
        let r = t.client.get(&t.url(&format!("/v1/{p}/x")), &[]).await;
        assert_eq!(r.status, 404, "/v1/{p}/x");
    }
    let m = t.client.get(&t.url("/metrics"), &[]).await.text();
    for w in methods.iter().chain(&paths) {
        assert!(!m.contains(w.as_str()), "{w} became a label value:\n{m}");
    }
    assert!(m.contains("method=\"other\""), "{m}");
    assert!(m.contains("route=\"other\""), "{m}");
    // Bounded: the made-up methods and paths share one series per status class.
    let series = m
        .lines()
        .filter(|l| l.starts_with("wristband_http_request_duration_seconds_count"))
        .count();
    assert!(series <= 8, "{series} series:\n{m}");
    assert!(m.len() < 32 * 1024, "{} bytes:\n{m}", m.len());
}
