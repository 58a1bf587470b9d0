//! `wristband client ...` and `wristband sessions ...`: OAuth clients and sessions, on the
//! same data directory or database as the server.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use wristband_server::config::{Config, Overrides};
use wristband_server::domain::oauth::{self, NewClient};
use wristband_server::domain::{revoke, RecordLifetime, TokenFormat};
use wristband_server::startup::open_store_read_only;
use wristband_server::store::Store;

use crate::settings::{init_logging, StoreArgs};
use crate::Outcome;

/// Client commands.
#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    /// Gets tokens of its own (client_credentials).
    Service,
    /// An API: may also introspect tokens and read the revocation feed.
    ResourceServer,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register a client and print its id and secret (shown once).
    Add {
        /// Unique name.
        name: String,
        /// What the client is.
        #[arg(long, value_enum)]
        kind: Kind,
        /// A scope it may ask for; repeat for several.
        #[arg(long)]
        scope: Vec<String>,
        /// An audience it may ask for; repeat for several (the first is the default).
        /// Required for a service client; a resource server's tokens name only the
        /// auth service's feed, whatever is given here.
        #[arg(long)]
        audience: Vec<String>,
        /// Issue opaque reference tokens instead of JWTs to this client.
        #[arg(long)]
        opaque: bool,
        /// Print `{"client_id": ..., "client_secret": ...}`.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List,
    /// Remove a client.
    Remove {
        /// Name.
        name: String,
    },
    /// Replace a client's secret and print the new one; the tokens it was issued until now
    /// are revoked.
    RotateSecret {
        /// Name.
        name: String,
        /// Print `{"client_id": ..., "client_secret": ...}`.
        #[arg(long)]
        json: bool,
    },
}

/// Session commands.
#[derive(Debug, Args)]
pub(crate) struct SessionsArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// Revoke a session: its refresh tokens stop at once and its access tokens are pushed
    /// to the verifiers as revoked.
    Revoke {
        /// Session id (`sid`).
        id: String,
    },
}

/// Now, to the millisecond: the time of a subject cut-off.
fn now_ms() -> wristband_server::domain::revoke::Millis {
    wristband_server::domain::revoke::Millis::now(&wristband_jose::SystemClock)
}

fn lifetime(config: &Config) -> RecordLifetime {
    RecordLifetime {
        access_ttl_secs: wristband_jose::secs_i64(config.access_ttl),
    }
}

fn print_secret(out: &mut impl Write, c: &NewClient, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        let v = json!({ "client_id": c.record.id, "client_secret": c.secret.expose() });
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "client_id:     {}", c.record.id)?;
        writeln!(out, "client_secret: {}", c.secret.expose())?;
        writeln!(
            out,
            "(the secret is shown only now; only its hash is stored)"
        )?;
    }
    Ok(())
}

/// Opens the store, read-only (no migrations, no writes) when `read_only`, and runs `f`.
async fn with_store<T>(
    args: &StoreArgs,
    read_only: bool,
    f: impl AsyncFnOnce(&Config, &dyn Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let config = args.load(Overrides::default())?;
    init_logging();
    let store = if read_only {
        open_store_read_only(&config).await
    } else {
        crate::settings::open_writable_store(&config, false).await
    }
    .context("opening the store")?;
    f(&config, &*store).await
}

fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    crate::settings::current_thread_runtime()?.block_on(f)
}

/// Runs a client command.
pub(crate) fn run_client(args: &ClientArgs, out: &mut impl Write) -> anyhow::Result<Outcome> {
    let read_only = matches!(args.command, ClientCommand::List);
    block_on(with_store(&args.store, read_only, async |config, store| {
        match &args.command {
            ClientCommand::Add {
                name,
                kind,
                scope,
                audience,
                opaque,
                json,
            } => {
                let kind = match kind {
                    Kind::Service => oauth::KIND_SERVICE,
                    Kind::ResourceServer => oauth::KIND_RESOURCE_SERVER,
                };
                if kind == oauth::KIND_SERVICE && audience.is_empty() {
                    // Its tokens carry only the audiences registered for it: without one
                    // the token endpoint would refuse it every token.
                    anyhow::bail!(
                        "a service client needs --audience naming the API its tokens are for"
                    );
                }
                let format = if *opaque {
                    TokenFormat::Opaque
                } else {
                    TokenFormat::Jwt
                };
                let scopes = scope
                    .iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(str::to_owned)
                    .collect();
                let c = oauth::add_client(
                    store,
                    name,
                    kind,
                    scopes,
                    audience.clone(),
                    format,
                    crate::args::now_secs(),
                )
                .await?;
                print_secret(out, &c, *json)?;
            }
            ClientCommand::List => {
                writeln!(
                    out,
                    "{:<20} {:<28} {:<16} {:<7} scopes / audiences",
                    "name", "client_id", "kind", "tokens"
                )?;
                for c in store.list_clients().await? {
                    writeln!(
                        out,
                        "{:<20} {:<28} {:<16} {:<7} {} / {}",
                        c.name,
                        c.id,
                        c.kind,
                        c.token_format.as_str(),
                        c.scopes.join(" "),
                        c.audiences.join(" ")
                    )?;
                }
            }
            ClientCommand::Remove { name } => {
                let c = oauth::remove_client(store, lifetime(config), name, now_ms()).await?;
                writeln!(out, "removed {} ({})", c.name, c.id)?;
            }
            ClientCommand::RotateSecret { name, json } => {
                let c =
                    oauth::rotate_client_secret(store, lifetime(config), name, now_ms()).await?;
                print_secret(out, &c, *json)?;
            }
        }
        Ok(Outcome::Success)
    }))
}

/// Runs a sessions command.
pub(crate) fn run_sessions(args: &SessionsArgs, out: &mut impl Write) -> anyhow::Result<Outcome> {
    block_on(with_store(&args.store, false, async |config, store| {
        match &args.command {
            SessionsCommand::Revoke { id } => {
                match revoke::revoke_session(
                    store,
                    lifetime(config),
                    id,
                    "admin_revoked",
                    crate::args::now_secs(),
                )
                .await?
                {
                    Some(_) => writeln!(out, "revoked session {id}")?,
                    None => anyhow::bail!("no live session {id}"),
                }
            }
        }
        Ok(Outcome::Success)
    }))
}
