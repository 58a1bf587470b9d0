//! `wristband client ...` and `wristband sessions ...`: OAuth clients and sessions, on the
//! same data directory or database as the server.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use wristband_server::config::{Config, Overrides};
use wristband_server::domain::oauth::{self, NewClient};
use wristband_server::domain::oidc::{self, ClientChanges, RelyingParty};
use wristband_server::domain::{revoke, RecordLifetime, TokenFormat};
use wristband_server::startup::open_store_read_only;
use wristband_server::store::{ClientKind, Store};

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
    /// An OpenID Connect relying party that keeps a secret (a web server).
    Web,
    /// An OpenID Connect relying party without a secret (a browser or native app; PKCE).
    Public,
}

/// The OpenID Connect settings of `client add` and `client update`.
#[derive(Debug, Args, Default)]
struct OidcArgs {
    /// A redirect URI (web and public clients; repeat for several): exact match, https or
    /// loopback http (any port), or a private-use scheme (public clients).
    #[arg(long = "redirect-uri")]
    redirect_uri: Vec<String>,
    /// Where RP-initiated logout may send the user back; repeat for several.
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uri: Vec<String>,
    /// Where back-channel logout tokens are posted.
    #[arg(long = "backchannel-logout-uri")]
    backchannel_logout_uri: Option<String>,
    /// A first-party app: no consent page.
    #[arg(long = "first-party")]
    first_party: bool,
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
        #[command(flatten)]
        oidc: OidcArgs,
        /// Print `{"client_id": ..., "client_secret": ...}`.
        #[arg(long)]
        json: bool,
    },
    /// Change a web or public client: each option given replaces that setting.
    Update {
        /// Name.
        name: String,
        /// The redirect URIs (replace all; repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uri: Vec<String>,
        /// The post-logout redirect URIs (replace all).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uri: Vec<String>,
        /// The back-channel logout URI.
        #[arg(
            long = "backchannel-logout-uri",
            conflicts_with = "no_backchannel_logout"
        )]
        backchannel_logout_uri: Option<String>,
        /// Remove the back-channel logout URI.
        #[arg(long = "no-backchannel-logout")]
        no_backchannel_logout: bool,
        /// Make it first-party (no consent page).
        #[arg(long = "first-party", conflicts_with = "third_party")]
        first_party: bool,
        /// Make it third-party (consent page).
        #[arg(long = "third-party")]
        third_party: bool,
        /// The scopes (replace all; repeat for several).
        #[arg(long)]
        scope: Vec<String>,
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
                oidc,
                json,
            } => {
                let scopes: Vec<String> = scope
                    .iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(str::to_owned)
                    .collect();
                let rp_kind = match kind {
                    Kind::Web => Some(ClientKind::Web),
                    Kind::Public => Some(ClientKind::Public),
                    _ => None,
                };
                if let Some(rp_kind) = rp_kind {
                    let rp = RelyingParty {
                        redirect_uris: oidc.redirect_uri.clone(),
                        post_logout_redirect_uris: oidc.post_logout_redirect_uri.clone(),
                        backchannel_logout_uri: oidc.backchannel_logout_uri.clone(),
                        first_party: oidc.first_party,
                        scopes,
                        audiences: audience.clone(),
                    };
                    let c =
                        oidc::add_relying_party(store, name, rp_kind, rp, crate::args::now_secs())
                            .await?;
                    if rp_kind == ClientKind::Public {
                        if *json {
                            writeln!(out, "{}", json!({ "client_id": c.record.id }))?;
                        } else {
                            writeln!(out, "client_id:     {}", c.record.id)?;
                            writeln!(
                                out,
                                "(a public client has no secret: it proves itself with PKCE)"
                            )?;
                        }
                    } else {
                        print_secret(out, &c, *json)?;
                    }
                    return Ok(Outcome::Success);
                }
                let oidc_given = !oidc.redirect_uri.is_empty()
                    || !oidc.post_logout_redirect_uri.is_empty()
                    || oidc.backchannel_logout_uri.is_some()
                    || oidc.first_party;
                if oidc_given {
                    anyhow::bail!(
                        "--redirect-uri, --post-logout-redirect-uri, --backchannel-logout-uri \
                         and --first-party are for --kind web or public"
                    );
                }
                let kind = match kind {
                    Kind::ResourceServer => oauth::KIND_RESOURCE_SERVER,
                    _ => oauth::KIND_SERVICE,
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
            ClientCommand::Update {
                name,
                redirect_uri,
                post_logout_redirect_uri,
                backchannel_logout_uri,
                no_backchannel_logout,
                first_party,
                third_party,
                scope,
            } => {
                let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
                let changes = ClientChanges {
                    redirect_uris: some(redirect_uri),
                    post_logout_redirect_uris: some(post_logout_redirect_uri),
                    backchannel_logout_uri: if *no_backchannel_logout {
                        Some(None)
                    } else {
                        backchannel_logout_uri.clone().map(Some)
                    },
                    first_party: if *first_party {
                        Some(true)
                    } else if *third_party {
                        Some(false)
                    } else {
                        None
                    },
                    scopes: some(
                        &scope
                            .iter()
                            .flat_map(|s| s.split_whitespace())
                            .map(str::to_owned)
                            .collect(),
                    ),
                };
                let c = oidc::update_client(store, name, changes).await?;
                writeln!(out, "updated {} ({})", c.name, c.id)?;
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
                    if c.kind.is_relying_party() {
                        let party = if c.first_party {
                            "first-party"
                        } else {
                            "third-party"
                        };
                        writeln!(out, "  {party}")?;
                        for u in &c.redirect_uris {
                            writeln!(out, "  redirect-uri:             {u}")?;
                        }
                        for u in &c.post_logout_redirect_uris {
                            writeln!(out, "  post-logout-redirect-uri: {u}")?;
                        }
                        if let Some(u) = &c.backchannel_logout_uri {
                            writeln!(out, "  backchannel-logout-uri:   {u}")?;
                        }
                    }
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
