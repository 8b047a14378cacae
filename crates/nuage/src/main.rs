use std::process::ExitCode;

use clap::Parser;
use nuage::cli::{Cli, Command};
use nuage::config::Config;
use nuage::server::{Application, announce};

/// mimalloc: the server allocates many small, short-lived buffers (rows,
/// XML and HTML of listings) from several threads, where glibc's allocator
/// spends a large share of the time (docs/PERFORMANCE.md, the drive).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nuage: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        Command::Serve(args) => runtime.block_on(async {
            let config = match Config::load(args.config.as_deref(), &args.overrides()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("nuage: {e:#}");
                    return ExitCode::from(2);
                }
            };
            nuage::telemetry::init_logs(config.log.format, &config.log.filter);
            nuage::telemetry::metrics();
            match serve(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("nuage: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
        _ => runtime.block_on(nuage::cli::run_client(&cli)),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let root_token = std::env::var("NUAGE_ROOT_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let data_dir = config.data_dir.clone();
    let app = Application::build(config, root_token).await?;
    announce(app.addresses(), &data_dir)?;
    app.run_until_stopped().await
}
