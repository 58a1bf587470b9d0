//! `wristband user ...`: user administration on the same data directory or database as the
//! server. Passwords are read from a prompt, or from standard input with
//! `--password-stdin`; never from the command line.

use std::io::{BufRead, Write};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use wristband_jose::SecretString;
use wristband_server::config::Overrides;
use wristband_server::domain::{mfa, users, Passwords, RecordLifetime};
use wristband_server::startup::open_store_read_only;

use crate::settings::{current_thread_runtime, init_logging, StoreArgs};
use crate::Outcome;

/// User commands.
#[derive(Debug, Args)]
pub(crate) struct UserArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user.
    Add {
        /// Login name.
        name: String,
        /// Role claim of the user's tokens.
        #[arg(long, default_value = "user")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Disable a user and end all their sessions.
    Disable {
        /// Login name.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// Login name.
        name: String,
    },
    /// Change a password and end all the user's sessions.
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// End every session of a user and revoke all their tokens.
    RevokeTokens {
        /// Login name.
        name: String,
    },
    /// Change a user's role (their current tokens are revoked).
    SetRole {
        /// Login name.
        name: String,
        /// New role.
        role: String,
    },
    /// A user's second factors.
    #[command(subcommand)]
    Mfa(MfaCommand),
}

#[derive(Debug, Subcommand)]
enum MfaCommand {
    /// Show a user's second factors.
    Status {
        /// Login name.
        name: String,
    },
    /// Remove every second factor of a user (a lost phone) and end all their sessions;
    /// audited. The user signs in with the password alone next time and can enrol again.
    Reset {
        /// Login name.
        name: String,
    },
}

fn read_password(from_stdin: bool) -> anyhow::Result<SecretString> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        return Ok(SecretString::new(pw));
    }
    let first = prompt("Password: ")?;
    let again = prompt("Repeat:   ")?;
    if first != again {
        bail!("the passwords differ");
    }
    Ok(SecretString::new(first))
}

/// Reads a password from the terminal without echo. Without a terminal (a script, a pipe,
/// a service), the error says how to pass it instead.
fn prompt(text: &str) -> anyhow::Result<String> {
    rpassword::prompt_password(text).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the password from a terminal ({e}): use --password-stdin and write \
             it to standard input"
        )
    })
}

/// Now, to the millisecond: the time of a subject cut-off.
fn now_ms() -> wristband_server::domain::revoke::Millis {
    wristband_server::domain::revoke::Millis::now(&wristband_jose::SystemClock)
}

/// Runs a user command.
pub(crate) fn run(args: &UserArgs, out: &mut impl Write) -> anyhow::Result<Outcome> {
    let config = args.store.load(Overrides::default())?;
    init_logging();
    let rt = current_thread_runtime()?;
    rt.block_on(async {
        // Listing never writes: no migrations, read-only where the database allows it.
        let read_only = matches!(
            args.command,
            UserCommand::List | UserCommand::Mfa(MfaCommand::Status { .. })
        );
        let store = if read_only {
            open_store_read_only(&config).await
        } else {
            let create = matches!(args.command, UserCommand::Add { .. });
            crate::settings::open_writable_store(&config, create).await
        }
        .context("opening the store")?;
        let store = &*store;
        let passwords = || Passwords::new(config.argon2, 1);
        let life = RecordLifetime {
            access_ttl_secs: wristband_jose::secs_i64(config.access_ttl),
        };
        match &args.command {
            UserCommand::Add {
                name,
                role,
                password_stdin,
            } => {
                let pw = read_password(*password_stdin)?;
                let u = users::add_user(
                    store,
                    &passwords()?,
                    name,
                    pw,
                    role,
                    crate::args::now_secs(),
                )
                .await?;
                writeln!(out, "added {} ({}) with role {}", u.username, u.id, u.role)?;
            }
            UserCommand::List => {
                writeln!(out, "{:<24} {:<28} {:<12} status", "username", "id", "role")?;
                for u in store.list_users().await? {
                    let status = if u.disabled { "disabled" } else { "active" };
                    writeln!(
                        out,
                        "{:<24} {:<28} {:<12} {status}",
                        u.username, u.id, u.role
                    )?;
                }
            }
            UserCommand::Disable { name } => {
                users::set_disabled(store, life, name, true, now_ms()).await?;
                writeln!(out, "disabled {name}; their sessions are revoked")?;
            }
            UserCommand::Enable { name } => {
                users::set_disabled(store, life, name, false, now_ms()).await?;
                writeln!(out, "enabled {name}")?;
            }
            UserCommand::Passwd {
                name,
                password_stdin,
            } => {
                let pw = read_password(*password_stdin)?;
                users::set_password(store, life, &passwords()?, name, pw, now_ms()).await?;
                writeln!(
                    out,
                    "changed the password of {name}; their sessions are revoked"
                )?;
            }
            UserCommand::RevokeTokens { name } => {
                users::revoke_tokens(store, life, name, now_ms()).await?;
                writeln!(out, "revoked every session and token of {name}")?;
            }
            UserCommand::SetRole { name, role } => {
                users::set_role(store, life, name, role, now_ms()).await?;
                writeln!(out, "{name} now has role {role}")?;
            }
            UserCommand::Mfa(MfaCommand::Status { name }) => {
                let user = users::find(store, name).await?;
                let s = mfa::status(store, &user.id).await?;
                let totp = match (s.totp_confirmed_at, s.totp_pending) {
                    (Some(at), _) => format!(
                        "on since {}",
                        crate::timefmt::rfc3339(u64::try_from(at).unwrap_or(0))
                    ),
                    (None, true) => "enrolment started, not confirmed".to_owned(),
                    (None, false) => "off".to_owned(),
                };
                writeln!(out, "user:            {} ({})", user.username, user.id)?;
                writeln!(out, "totp:            {totp}")?;
                writeln!(out, "recovery codes:  {} left", s.recovery_codes_left)?;
                let methods = s.methods();
                let methods = if methods.is_empty() {
                    "password only".to_owned()
                } else {
                    methods.join(", ")
                };
                writeln!(out, "second step:     {methods}")?;
            }
            UserCommand::Mfa(MfaCommand::Reset { name }) => {
                let (_, rows) = mfa::reset(store, life, name, now_ms()).await?;
                writeln!(
                    out,
                    "removed the second factors of {name} ({rows} records); their sessions \
                     are revoked"
                )?;
            }
        }
        Ok(Outcome::Success)
    })
}
