//! The command line: parsing (`clap`), the exit codes (0 all fine, 1 something failed, 2 bad
//! input with one line on stderr) and human or `--json` output on stdout; progress and errors go
//! to stderr, so `--json` output stays one document.

use crate::connect::{self, Connection};
use crate::output::print;
use crate::roles::Identity;
use crate::rotate::RotateSettings;
use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, OpsError, code, doctor, queue, rotate};
use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use codes::variables::CODE_LEDGER_URL;
use shared_auth::EnvSource;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};

/// `keyless`: check and operate a keyless-azure deployment with the identity in the environment.
#[derive(Debug, Parser)]
#[command(
    name = "keyless",
    version,
    about = "Check and operate a keyless-azure deployment, authenticated as the services are",
    long_about = "Check and operate a keyless-azure deployment. Authenticates exactly as the \
                  services do (AZURE_TOKEN_CREDENTIALS, AZURE_* variables, managed identity, \
                  EXTRA_CA_CERTS) and reads the same variables (STORAGE_QUEUE_URL, \
                  POISON_QUEUE_URL, CODE_LEDGER_URL, KEY_VAULT_URL, THIRD_PARTY_API_SECRET_NAME, \
                  THIRD_PARTY_API_MASTER_KEY_SECRET_NAME, THIRD_PARTY_API_KEYS_URL, \
                  THIRD_PARTY_API_ENDPOINT, THIRD_PARTY_API_KEYS_REFRESH_SECONDS, \
                  SECRET_CACHE_TTL_SECONDS, QUEUE_MESSAGE_ENCODING). Exit codes: 0 all fine, 1 a check or an operation \
                  failed, 2 bad input."
)]
pub struct Cli {
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every permission a service needs with real, harmless calls; name missing roles.
    Doctor(DoctorArgs),
    /// Look at, clear or requeue the code queue and its poison queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Ask the ledger about codes.
    #[command(subcommand)]
    Code(CodeCommand),
    /// Rotate main-app's key for third-party-api without a failed request; rerun to resume.
    #[command(
        long_about = "Rotate main-app's function key for third-party-api without a failed \
    request. Steps: preflight (read both secrets, prove write access without changing them; a \
    missing Key Vault Secrets Officer stops the run naming it), renew the master key's expiry \
    when it has none or half of --expires-in-days is left (or generate the master key in place \
    of the provisioning placeholder), add a new key, write it as a new vault version with an \
    expiry once every replica has it, wait until main-app uses it (or, without traffic, until \
    main-app's key cache has expired with no older key accepted since the write; not at all \
    when no older key exists), wait until the older keys are unused for the grace period once \
    main-app's key cache lifetime has passed since the write, revoke them. Each completed step prints a `done: ` line; waits show progress on stderr. The \
    state is read back from the vault and the key store every run, so a rerun after an \
    interruption at any point completes. Reads KEY_VAULT_URL, THIRD_PARTY_API_SECRET_NAME, \
    THIRD_PARTY_API_MASTER_KEY_SECRET_NAME, THIRD_PARTY_API_ENDPOINT, \
    THIRD_PARTY_API_KEYS_REFRESH_SECONDS, SECRET_CACHE_TTL_SECONDS and the identity variables."
    )]
    Rotate(RotateSettings),
}

/// `keyless doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The service whose permissions to check (default: guessed from the variables set).
    #[arg(long = "as", value_enum, value_name = "SERVICE")]
    pub as_service: Option<Identity>,
}

/// `keyless queue ...`.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Show the messages at the front of the queue, decoded, without changing them.
    Peek {
        /// The poison queue instead of the code queue.
        #[arg(long)]
        poison: bool,
        /// How many messages (1 to 32).
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=32))]
        max: u32,
    },
    /// Delete every visible message (asks first unless --yes).
    Clear {
        /// The poison queue instead of the code queue.
        #[arg(long)]
        poison: bool,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Move poison messages back to the code queue unchanged (send, then delete).
    RequeuePoison {
        /// At most this many messages (default: all).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        max: Option<u32>,
    },
}

/// `keyless code ...`.
#[derive(Debug, Subcommand)]
pub enum CodeCommand {
    /// What the ledger says about CODE: issued, used, expired or unknown (read-only).
    Status {
        /// The code, `AAA-N-BBB`.
        code: String,
    },
}

/// Parses `args`, runs the command with `env`, writes its output to `out` and its errors and
/// progress lines to `err` (stdout and stderr in the binary); returns the exit code. (The
/// confirmation prompt of `queue clear` is on the terminal.)
pub async fn run(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    env: &dyn EnvSource,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return parse_error(&e, out, err),
    };
    match execute(&cli, env, out, err).await {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "keyless: {}", connect::one_line(&e.to_string()));
            e.exit_code()
        }
    }
}

fn parse_error(e: &clap::Error, out: &mut (dyn Write + Send), err: &mut (dyn Write + Send)) -> i32 {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = write!(out, "{}", e.render());
            EXIT_OK
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let _ = writeln!(
                err,
                "keyless: error: a subcommand is required (see `keyless --help`)"
            );
            EXIT_USAGE
        }
        _ => {
            let rendered = e.render().to_string();
            let line = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("error: bad command line");
            let _ = writeln!(err, "keyless: {} (see `keyless --help`)", line.trim());
            EXIT_USAGE
        }
    }
}

async fn execute(
    cli: &Cli,
    env: &dyn EnvSource,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Result<i32, OpsError> {
    match &cli.command {
        Command::Doctor(args) => {
            let identity = match args.as_service {
                Some(identity) => identity,
                None => doctor::infer_identity(env).ok_or_else(|| {
                    OpsError::Usage(
                        "cannot tell which service this environment is for (none of KEY_VAULT_URL, \
                         STORAGE_QUEUE_URL, THIRD_PARTY_API_KEYS_URL is set): pass --as \
                         main-app|queue-worker|third-party-api|rotation"
                            .into(),
                    )
                })?,
            };
            let report = doctor::run(env, identity).await?;
            print(out, cli.json, &report);
            Ok(if report.ok() { EXIT_OK } else { EXIT_FAILED })
        }
        Command::Queue(command) => queue_command(command, cli.json, env, out, err).await,
        Command::Code(CodeCommand::Status { code }) => {
            let code = code::parse_code(code)?;
            let ledger = shared_auth::config::https_url(env, CODE_LEDGER_URL)?;
            let conn = Connection::from_env(env)?;
            let status = code::status(&conn, &ledger, &code).await?;
            print(out, cli.json, &status);
            Ok(EXIT_OK)
        }
        Command::Rotate(settings) => {
            let settings = RotateSettings {
                json: cli.json,
                ..settings.clone()
            };
            rotate::run(env, &settings, out, err).await
        }
    }
}

fn queue_url(env: &dyn EnvSource, poison: bool) -> Result<azure_core::http::Url, OpsError> {
    Ok(if poison {
        codes::queues::poison_queue_url(env)?
    } else {
        codes::queues::queue_url(env)?
    })
}

/// The progress line of a long queue operation, `keyless: deleted 32 so far ...`, on `err`.
fn progress<'a>(verb: &'static str, err: &'a mut (dyn Write + Send)) -> impl FnMut(usize) + 'a {
    move |n| {
        let _ = writeln!(err, "keyless: {verb} {n} so far ...");
    }
}

async fn queue_command(
    command: &QueueCommand,
    json: bool,
    env: &dyn EnvSource,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Result<i32, OpsError> {
    match command {
        QueueCommand::Peek { poison, max } => {
            let url = queue_url(env, *poison)?;
            let encoding = codes::MessageEncoding::from_env(env)?;
            let conn = Connection::from_env(env)?;
            let messages = queue::peek(&conn, &url, *poison, encoding, *max).await?;
            let queue = connect::resource_name(&url);
            print(out, json, &queue::Peek { queue, messages });
            Ok(EXIT_OK)
        }
        QueueCommand::Clear { poison, yes } => {
            let url = queue_url(env, *poison)?;
            let name = connect::resource_name(&url);
            if !yes && !confirm(&name)? {
                let _ = writeln!(err, "keyless: nothing deleted");
                return Ok(EXIT_FAILED);
            }
            let conn = Connection::from_env(env)?;
            let deleted = queue::clear(&conn, &url, &mut progress("deleted", err)).await?;
            print(
                out,
                json,
                &queue::Cleared {
                    queue: name,
                    deleted,
                },
            );
            Ok(EXIT_OK)
        }
        QueueCommand::RequeuePoison { max } => {
            let poison = codes::queues::poison_queue_url(env)?;
            let target = codes::queues::queue_url(env)?;
            let conn = Connection::from_env(env)?;
            let requeued = queue::requeue_poison(
                &conn,
                &poison,
                &target,
                *max,
                &mut progress("requeued", err),
            )
            .await?;
            let (from, to) = (
                connect::resource_name(&poison),
                connect::resource_name(&target),
            );
            print(out, json, &queue::Requeued { from, to, requeued });
            Ok(EXIT_OK)
        }
    }
}

/// Asks on the terminal; without one, refuses (bad input: `--yes` is needed).
fn confirm(queue: &str) -> Result<bool, OpsError> {
    if !std::io::stdin().is_terminal() {
        return Err(OpsError::Usage(format!(
            "refusing to clear queue {queue} without --yes (no terminal to ask on)"
        )));
    }
    eprint!("Delete every visible message of queue {queue}? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| OpsError::Usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
