//! placeholder
use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub(crate) enum BenchCmd {
    /// Import and export a generated layer.
    Import,
}

pub(crate) async fn run(_out: crate::output::Output, _cmd: BenchCmd) -> Result<()> {
    Ok(())
}
