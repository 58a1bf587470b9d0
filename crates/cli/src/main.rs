//! `wristband`: the command-line tool of Wristband: the auth service, users, keys and tokens.
//!
//! `main.rs` only parses the command line and maps outcomes to exit codes. The commands
//! live in their own modules: [`serve`] (the auth service), [`user`] (user administration
//! on the service's store), [`client`] (OAuth clients and sessions), [`demo`] (the live walkthrough), [`keys`] (key generation),
//! [`token`] (sign and decode),
//! [`verify`] (local verification against a key or JWKS), [`audit`] (common mistakes) and
//! [`gate`] (the forward-auth gate, `gate check-policy`, `gate explain`).
//! [`keyfile`] reads and writes key files,
//! [`args`] holds the value parsers shared by several commands, and [`settings`] the
//! layered configuration of the commands that use the store.

#![forbid(unsafe_code)]

mod args;
mod audit;
mod client;
mod demo;
mod gate;
mod keyfile;
mod keys;
mod serve;
mod settings;
mod timefmt;
mod token;
mod user;
mod verify;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Wristband: short-lived, locally verifiable access tokens.
#[derive(Debug, Parser)]
#[command(
    name = "wristband",
    version,
    about = "Wristband: an auth service, and short-lived access tokens (RFC 9068 JWTs) that any API verifies locally",
    long_about = "Wristband: an auth service, and short-lived access tokens (RFC 9068 JWTs) that \
        any API verifies locally.\n\n\
        Run the auth service, manage its users, play the demo, generate signing keys, sign \
        tokens for testing, and decode, verify or audit tokens \
        while debugging. Tokens may be given as an argument or, to keep them out of shell \
        history, on standard input (omit TOKEN or pass `-`).",
    after_help = "Exit status: 0 on success; 1 when a token is invalid or an audit finds \
        problems; 2 on a usage error or any other failure.",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the auth service (SQLite in --data-dir by default).
    Serve(Box<settings::ServeArgs>),
    /// Manage users in the auth service's store.
    User(user::UserArgs),
    /// Manage OAuth clients (services and resource servers).
    Client(client::ClientArgs),
    /// Revoke sessions.
    Sessions(client::SessionsArgs),
    /// Play the walkthrough live: auth service, two API services, login, outage, reuse.
    Demo,
    /// Generate signing keys, and manage the auth service's keys (rotate, retire, revoke).
    Keys(keys::KeysArgs),
    /// Sign, decode, verify and audit access tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Run the forward-auth gate for nginx, Traefik, Caddy and Envoy; check a policy;
    /// explain a decision.
    Gate(Box<gate::GateArgs>),
}

/// What a command concluded, when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done; exit status 0.
    Success,
    /// The token was rejected or the audit found problems; exit status 1.
    Rejected,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Serve(args) => serve::run(&args, &mut out),
        Command::User(args) => user::run(&args, &mut out),
        Command::Client(args) => client::run_client(&args, &mut out),
        Command::Sessions(args) => client::run_sessions(&args, &mut out),
        Command::Demo => demo::run(&mut out),
        Command::Keys(args) => keys::run(args, &mut out),
        Command::Token(cmd) => token::run(cmd, &mut out),
        Command::Gate(args) => gate::run(&args, &mut out),
    }
    .and_then(|outcome| {
        out.flush()?;
        Ok(outcome)
    });
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Rejected) => ExitCode::from(1),
        Err(e) => {
            // Nothing more can be done if stderr is gone.
            let _ = writeln!(io::stderr(), "error: {}", chain(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes, `: `-separated, each said once: a cause whose text its parent
/// already includes (errors that print their source in their own message) is skipped.
fn chain(e: &anyhow::Error) -> String {
    let mut said = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !last.is_empty() && last.contains(&text) {
            continue;
        }
        if !said.is_empty() {
            said.push_str(": ");
        }
        said.push_str(&text);
        last = text;
    }
    said
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[test]
    fn a_cause_already_in_its_parent_is_said_once() {
        let io = std::io::Error::other("Address already in use (os error 98)");
        let e = anyhow::Error::new(io)
            .context("cannot listen on 127.0.0.1:8080: Address already in use (os error 98)");
        assert_eq!(
            chain(&e),
            "cannot listen on 127.0.0.1:8080: Address already in use (os error 98)"
        );
        let e = anyhow::anyhow!("permission denied").context("reading master.key");
        assert_eq!(chain(&e), "reading master.key: permission denied");
    }
}
