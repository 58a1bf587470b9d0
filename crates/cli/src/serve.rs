//! `wristband serve`: the auth service.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use wristband_jose::SystemClock;
use wristband_serve::shutdown_signal;
use wristband_server::startup::App;

use crate::settings::{init_logging, runtime, ServeArgs};
use crate::Outcome;

/// Runs the auth service until SIGINT or SIGTERM, then drains requests in flight.
pub(crate) fn run(args: &ServeArgs, out: &mut impl Write) -> anyhow::Result<Outcome> {
    let config = args.load()?;
    init_logging();
    runtime()?.block_on(async {
        let alg = config.alg;
        let app = App::build(config, Arc::new(SystemClock))
            .await
            .context("starting the auth service")?;
        let issuer = app.service().issuer().to_owned();
        if app.created_key() {
            writeln!(
                out,
                "created a new {alg} signing key, stored encrypted in the database"
            )?;
        }
        writeln!(out, "listening on {}", app.local_addr())?;
        writeln!(out, "issuer:   {issuer}")?;
        writeln!(out, "JWKS:     {issuer}/.well-known/jwks.json")?;
        writeln!(
            out,
            "metadata: {issuer}/.well-known/oauth-authorization-server"
        )?;
        writeln!(out, "login:    POST {issuer}/v1/login")?;
        let public = app.service().public_url();
        let pages = format!("{}{}", public.origin(), public.prefix());
        writeln!(out, "pages:    {pages}/login, {pages}/account")?;
        out.flush()?;
        app.run(shutdown_signal()).await?;
        tracing::info!("shut down");
        Ok(Outcome::Success)
    })
}
