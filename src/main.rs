//! `vicinity`: the command line. Parses arguments, sets up logging, hands over to a command.

mod cli;
mod seed;
mod settings;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    telemetry::init(cli.settings.log_format, std::io::stderr);
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
