//! `cairn`: the S3-compatible object store.
//!
//! This binary owns the command line, configuration, start-up wiring and the
//! admin listener (/metrics, health). It must never contain storage or S3
//! logic: those live in `cairn-storage-engine` and `cairn-s3-api`.

mod admin_api;
mod admin_cli;
mod admin_http;
mod background;
mod cluster;
mod cluster_certs;
mod config;
mod gen_env;
mod limits;
mod malloc;
mod master_key;
mod notify;
mod server;
mod tls;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Cairn: an S3-compatible object store with dedup, compression,
/// encryption at rest and erasure coding.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the S3 server. With no options it keeps everything under
    /// ./cairn-data, listens on 127.0.0.1:9000 (S3) and 127.0.0.1:9001
    /// (metrics, health), and prints generated credentials on first start.
    ///
    /// Settings come from flags, then environment variables, then the
    /// --config TOML file, then defaults. Credentials: CAIRN_ACCESS_KEY and
    /// CAIRN_SECRET_KEY (at least 32 characters), never a flag. Master key:
    /// CAIRN_MASTER_KEY (64 hex digits) or the key file.
    Server(Box<config::ServerArgs>),
    /// Manage a running server through its admin listener (--admin-url,
    /// default http://127.0.0.1:9001): health, status, access keys,
    /// buckets, scrub, heal a replaced drive, garbage collection, cluster.
    /// And, offline, the master key of a stopped server's data directory.
    Admin(Box<admin_cli::AdminArgs>),
    /// Print a new `.env` for docker-compose.yml with random credentials,
    /// cluster secret and master key: `cairn gen-env --output .env`.
    GenEnv {
        /// Write it to this file (mode 0600; never overwrites) instead of
        /// stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
}

fn init_logging(format: config::LogFormat) {
    let filter = EnvFilter::try_from_env("CAIRN_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log files and journald get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Human => builder.init(),
        config::LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Admin(args) => admin_cli::run(*args),
        Command::GenEnv { output } => match gen_env::run(output.as_deref()) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cairn: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Server(args) => {
            let cfg = match config::ServerConfig::resolve(*args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("cairn: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            init_logging(cfg.log_format);
            if let Some(n) = malloc::limit_arenas() {
                tracing::debug!(arenas = n, "glibc malloc arenas limited");
            }
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cairn: cannot start the async runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match runtime.block_on(server::run(cfg)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cairn: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
