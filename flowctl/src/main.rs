//! flowctl: the command-line client of the switch, with the commands of ovs-vsctl and
//! ovs-ofctl (`add-br`, `add-port`, `add-flow(s)`, `dump-flows`, `monitor`, ...) over the
//! `vswitch.v1` gRPC API.
//!
//! Flow: parse the command line ([`cli`]), build every request ([`request`]; a bad argument
//! or flow file stops here with exit code 2 and nothing sent), connect ([`connect`]), run
//! ([`commands`]) and print ([`text`], [`json`]). Exit codes are listed in [`error`].

mod cli;
mod commands;
mod connect;
mod controllers;
mod error;
mod flowfile;
mod json;
mod request;
mod text;

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::error::{Error, Result};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(()) => 0,
        Err(Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            let _ = std::io::stdout().flush();
            if e.prefixed() {
                eprintln!("{e}");
            } else {
                eprintln!("flowctl: {e}");
            }
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}

fn run(cli: Cli) -> Result<()> {
    let addr = cli.server_addr(std::env::var(cli::SERVER_ENV).ok());
    let server = connect::parse_server(&addr)?;
    let tls = connect::TlsFiles {
        ca: cli.tls_ca.clone(),
        cert: cli.tls_cert.clone(),
        key: cli.tls_key.clone(),
    };
    let endpoint = connect::endpoint(&server, &tls)?;
    let req = request::prepare(&cli)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Connect(format!("cannot start the I/O runtime: {e}")))?;
    runtime.block_on(async {
        let mut client = connect::connect(&addr, &endpoint).await?;
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        commands::execute(&mut client, req, cli.format, &mut out).await
    })
}
