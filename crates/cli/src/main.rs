//! `ferry`: run an instance (`ferry serve`) and administer one over its REST API.

mod bench;
mod bench_console;
mod bench_files;
mod bench_kit;
mod bench_map;
mod bench_sync;
mod bench_twoway;
mod client;
mod collabs;
mod commands;
mod conflicts;
mod demo;
mod output;
mod peers;
mod serve;
mod sync;
mod trust;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    version,
    about = "Share data between independent organizations.",
    after_help = "Client commands reach the instance whose data directory is $FERRY_DATA_DIR (default: $XDG_DATA_HOME/ferry, else ~/.local/share/ferry) unless --server or FERRY_SERVER names another; its admin token is read from there too."
)]
struct Cli {
    /// URL of the Ferry server to administer (default: the one serving the local data directory).
    #[arg(long, global = true, env = "FERRY_SERVER")]
    server: Option<String>,
    /// API token (default: the admin token in the local data directory).
    #[arg(long, global = true, env = "FERRY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Print only this field of the answer, one line per record (`id`, `code`, `peer.title`):
    /// for shell variables, e.g. `ITEM=$(ferry --get id item import roads.geojson --space s)`.
    #[arg(long, global = true, value_name = "FIELD")]
    get: Option<String>,
    /// PEM certificates to trust besides the system's, for a server under a private CA.
    #[arg(long, global = true, env = "FERRY_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
    /// Send the token to a server at a plain http:// URL off loopback (it travels in clear).
    #[arg(long, global = true, env = "FERRY_ALLOW_PLAIN_HTTP")]
    allow_plain_http: bool,
    /// The instance's data directory: where `serve` keeps its data, and where client commands
    /// find the running instance and its admin token (default: $XDG_DATA_HOME/ferry, else
    /// ~/.local/share/ferry).
    #[arg(long, global = true, env = "FERRY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start three instances on loopback (a collaboration and a peer connection), load sample
    /// data, sync, and show what arrived where.
    Demo(demo::DemoArgs),
    /// Run an instance: HTTP API, metrics, change feed.
    Serve(serve::ServeArgs),
    /// This instance's identity.
    #[command(subcommand)]
    Instance(commands::InstanceCmd),
    /// API tokens for named users.
    #[command(subcommand)]
    Token(commands::TokenCmd),
    /// Spaces: containers of items.
    #[command(subcommand)]
    Space(commands::SpaceCmd),
    /// Items: datasets, feature layers and files.
    #[command(subcommand)]
    Item(commands::ItemCmd),
    /// The change feed of a space.
    Changes(commands::ChangesArgs),
    /// Peer connections with other instances.
    #[command(subcommand)]
    Peer(peers::PeerCmd),
    /// Collaborations: one host, many guests, workspaces with an access mode per guest.
    #[command(subcommand)]
    Collab(collabs::CollabCmd),
    /// Sync: run a link now, see where links stand, and their history.
    #[command(subcommand)]
    Sync(sync::SyncCmd),
    /// Network policy: which instances data may go to (egress) and come from (ingress). Data
    /// from S to R needs S's egress to R and R's ingress from S.
    #[command(subcommand)]
    Policy(trust::PolicyCmd),
    /// The log of trust and security events.
    #[command(subcommand)]
    Audit(trust::AuditCmd),
    /// Concurrent edits two-way editing found on this instance's items, with both versions
    /// kept: list, show and resolve them.
    #[command(subcommand)]
    Conflicts(conflicts::ConflictsCmd),
    /// Benchmarks that print ratios against a baseline measured in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `ferry ... | head` ends quietly when the reader goes away, as command-line tools do (Rust
    // ignores SIGPIPE, which turns the next write into a panic). Not for a running instance:
    // a peer that hangs up must never end it.
    if !matches!(cli.command, Command::Serve(_) | Command::Demo(_)) {
        sigpipe::reset();
    }
    ferry_server::tls::install_default_provider();
    init_logging(if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", output::for_terminal(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // The field name lives as long as the process: leaking it keeps `Output` a plain `Copy`
    // value that every command takes by value.
    let out = output::Output {
        json: cli.json,
        get: cli
            .get
            .clone()
            .map(|field| &*Box::leak(field.into_boxed_str())),
    };
    let connect = || {
        let data_dir = cli
            .data_dir
            .clone()
            .unwrap_or_else(client::default_data_dir);
        let target = client::Target::resolve(cli.server.clone(), cli.token.clone(), &data_dir)?;
        client::Client::new(
            target,
            &client::Transport {
                ca_bundle: cli.ca_bundle.clone(),
                allow_plain_http: cli.allow_plain_http,
            },
        )
    };
    match cli.command {
        Command::Serve(args) => serve::run(args, cli.data_dir.clone()).await,
        Command::Demo(args) => demo::run(out, args).await,
        Command::Instance(cmd) => commands::instance(connect, out, cmd).await,
        Command::Token(commands::TokenCmd::Recover) => {
            commands::recover_token(out, cli.data_dir.clone())
        }
        Command::Token(cmd) => commands::token(&connect()?, out, cmd).await,
        Command::Space(cmd) => commands::space(&connect()?, out, cmd).await,
        Command::Item(cmd) => commands::item(&connect()?, out, cmd).await,
        Command::Changes(args) => commands::changes(&connect()?, out, args).await,
        Command::Peer(cmd) => peers::peer(&connect()?, out, cmd).await,
        Command::Collab(cmd) => collabs::collab(&connect()?, out, cmd).await,
        Command::Sync(cmd) => sync::sync(&connect()?, out, cmd).await,
        Command::Policy(args) => trust::policy(&connect()?, out, args).await,
        Command::Audit(cmd) => trust::audit(&connect()?, out, cmd).await,
        Command::Conflicts(cmd) => conflicts::conflicts(&connect()?, out, cmd).await,
        Command::Bench(cmd) => bench::run(out, cmd).await,
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command says what it does, and every argument and option what it takes: the
    /// command line explains itself.
    #[test]
    fn every_command_argument_and_option_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name()).trim().to_string();
            if command.get_about().is_none() && command.get_name() != "help" {
                missing.push(format!("{path}: no about"));
            }
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} <{id}>"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "{} without help:\n{}",
            missing.len(),
            missing.join("\n")
        );
    }
}
