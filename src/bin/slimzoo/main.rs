//! `slimzoo`: TF-slim model-zoo checkpoints on libtorch, from the command line.

mod bench;
mod check;
mod classify;
mod common;
mod convert;
mod embed;
mod features;
mod inspect;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "slimzoo", version, about = "TensorFlow-slim checkpoints (ResNet v2, FaceNet) on libtorch, without TensorFlow")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    Check(check::Check),
    Inspect(inspect::Inspect),
    Convert(convert::Convert),
    Export(convert::Export),
    Zoo(convert::Zoo),
    Features(features::Features),
    Classify(classify::Classify),
    Embed(embed::Embed),
    Compare(embed::Compare),
    Bench(bench::Bench),
}

fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Check(c) => c.run(),
        Cmd::Inspect(c) => c.run(),
        Cmd::Convert(c) => c.run(),
        Cmd::Export(c) => c.run(),
        Cmd::Zoo(c) => c.run(),
        Cmd::Features(c) => c.run(),
        Cmd::Classify(c) => c.run(),
        Cmd::Embed(c) => c.run(),
        Cmd::Compare(c) => c.run(),
        Cmd::Bench(c) => c.run(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.cmd, Cmd::Check(_) | Cmd::Features(_) | Cmd::Classify(_) | Cmd::Embed(_) | Cmd::Compare(_) | Cmd::Bench(_)) {
        slimzoo::models::fast::tune_allocator();
    }
    match run(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `slimzoo inspect x | head` is not an error.
            if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) {
                return ExitCode::SUCCESS;
            }
            eprintln!("slimzoo: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
