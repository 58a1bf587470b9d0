//! A one-shot HTTP GET for `token verify --jwks URL`: bounded in size and time.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http::header::ACCEPT;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The largest JWKS document accepted.
pub(crate) const MAX_JWKS_BYTES: usize = 256 * 1024;
/// How long the whole fetch may take.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// True when `--jwks` names a URL rather than a file.
pub(crate) fn is_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Fetches a JWKS document over plain HTTP.
pub(crate) fn fetch_jwks(url: &str) -> anyhow::Result<Vec<u8>> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("`{url}` is not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => bail!(
            "https is not supported by this build of the CLI: download the JWKS and pass \
             the file to --jwks"
        ),
        _ => bail!("`{url}` is not an http:// URL"),
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the HTTP client")?;
    let body = runtime.block_on(async {
        tokio::time::timeout(FETCH_TIMEOUT, get(uri))
            .await
            .map_err(|_| anyhow!("no complete answer within {FETCH_TIMEOUT:?}"))?
    });
    body.with_context(|| format!("fetching {url}"))
}

async fn get(uri: Uri) -> anyhow::Result<Vec<u8>> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = Request::get(uri)
        .header(ACCEPT, "application/jwk-set+json, application/json")
        .body(Empty::new())?;
    let response = client.request(request).await?;
    let status = response.status();
    if !status.is_success() {
        bail!("the server answered {status}");
    }
    let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow!("reading the body: {e}"))?;
    Ok(body.to_bytes().to_vec())
}
