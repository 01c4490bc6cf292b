//! The `rescue-client` binary: parses the command line, sets up logging on stderr, and hands
//! over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = rescue::client::Cli::parse();
    rescue::client::init_logging();
    match rescue::client::run(cli).await {
        Ok(finished) => std::process::ExitCode::from(finished.exit_code()),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
