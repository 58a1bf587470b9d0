use wristband_jose::SecretString;
use wristband_server::domain::{ClientInfo, DomainError};

use crate::helpers::{TestApp, PASSWORD};

fn from(ip: &str) -> ClientInfo {
    ClientInfo {
        ip: Some(ip.to_owned()),
        user_agent: None,
    }
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same_and_get_throttled() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let wrong = t.login("alice", "not the password").await;
    let unknown = t.login("mallory", "not the password").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.json()["error"], "invalid_credentials");

    // Five free failures for one account from one address (one used above); the sixth
    // failure earns a delay, and the next attempt gets 429.
    for _ in 0..5 {
        assert_eq!(t.login("alice", "not the password").await.status, 401);
    }
    let throttled = t.login("alice", PASSWORD).await;
    assert_eq!(throttled.status, 429, "even the right password waits");
    assert_eq!(throttled.header("retry-after"), Some("1"));
    // The same for an unknown account: no enumeration through throttling.
    for _ in 0..5 {
        assert_eq!(t.login("mallory", "x-not-the-password").await.status, 401);
    }
    assert_eq!(t.login("mallory", "x-not-the-password").await.status, 429);

    // The wait is short and then the real password works.
    t.advance(1);
    assert_eq!(t.login("alice", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn delays_grow_but_stay_bounded() {
    let t = TestApp::spawn().await;
    t.add_user("bob", "user").await;
    let svc = &t.app;
    let pw = || SecretString::new("guess-guess-guess".into());
    let mut last = 0;
    for i in 0..12 {
        match svc.login("bob", pw(), &from("203.0.113.9")).await {
            Err(DomainError::InvalidCredentials) => {}
            Err(DomainError::Throttled { retry_after }) => {
                assert!(retry_after >= last, "attempt {i}: delays never shrink");
                assert!(retry_after <= 900, "never more than max_delay");
                last = retry_after;
                t.advance(retry_after);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(last >= 2, "delays grew to {last}");
}

#[tokio::test]
async fn an_attacker_elsewhere_cannot_lock_the_user_out() {
    let t = TestApp::spawn().await;
    t.add_user("carol", "user").await;
    let svc = &t.app;
    // The attacker guesses from one address until throttled.
    let mut throttled = false;
    for _ in 0..10 {
        if let Err(DomainError::Throttled { .. }) = svc
            .login(
                "carol",
                SecretString::new("guess-guess-guess".into()),
                &from("198.51.100.7"),
            )
            .await
        {
            throttled = true;
        }
    }
    assert!(throttled);
    // The real user, from their own address, logs in at once.
    svc.login(
        "carol",
        SecretString::new(PASSWORD.into()),
        &from("192.0.2.1"),
    )
    .await
    .unwrap();

    // Many attacking addresses trip the account-wide limit, but only for a bounded time.
    for i in 0..25 {
        let ip = format!("198.51.100.{}", 10 + i);
        let _ = svc
            .login(
                "carol",
                SecretString::new("guess-guess-guess".into()),
                &from(&ip),
            )
            .await;
    }
    let wait = match svc
        .login(
            "carol",
            SecretString::new(PASSWORD.into()),
            &from("192.0.2.1"),
        )
        .await
    {
        Err(DomainError::Throttled { retry_after }) => retry_after,
        other => panic!("expected the account-wide limit, got {other:?}"),
    };
    assert!(wait <= 900);
    t.advance(wait);
    svc.login(
        "carol",
        SecretString::new(PASSWORD.into()),
        &from("192.0.2.1"),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_success_forgets_the_failures_from_its_own_address_only() {
    let t = TestApp::spawn().await;
    t.add_user("dave", "user").await;
    let svc = &t.app;
    let wrong = || SecretString::new("guess-guess-guess".into());
    let right = || SecretString::new(PASSWORD.into());
    let home = from("192.0.2.44");
    let elsewhere = from("198.51.100.44");

    // A success with nothing to forget, then four failures from home (five are free).
    svc.login("dave", right(), &home).await.unwrap();
    for _ in 0..4 {
        assert!(matches!(
            svc.login("dave", wrong(), &home).await,
            Err(DomainError::InvalidCredentials)
        ));
    }
    // Four failures from elsewhere too.
    for _ in 0..4 {
        assert!(matches!(
            svc.login("dave", wrong(), &elsewhere).await,
            Err(DomainError::InvalidCredentials)
        ));
    }
    // Success from home forgets home's four: five more failures there are free again.
    svc.login("dave", right(), &home).await.unwrap();
    for i in 0..5 {
        assert!(
            matches!(
                svc.login("dave", wrong(), &home).await,
                Err(DomainError::InvalidCredentials)
            ),
            "failure {i} after the success must still be free"
        );
    }
    svc.login("dave", right(), &home).await.unwrap();
    // Elsewhere's four still count: two more failures there earn a delay.
    for _ in 0..2 {
        assert!(matches!(
            svc.login("dave", wrong(), &elsewhere).await,
            Err(DomainError::InvalidCredentials)
        ));
    }
    assert!(matches!(
        svc.login("dave", right(), &elsewhere).await,
        Err(DomainError::Throttled { retry_after: 1 })
    ));
}
