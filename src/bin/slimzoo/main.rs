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

/// Keeps glibc's malloc from returning large blocks to the kernel after each use.
///
/// libtorch allocates every activation with `posix_memalign`; blocks above 32 MB are `mmap`ed and
/// `munmap`ed on free by default, so every forward pass page-faults its activations in again
/// (measured: ~25% of a ResNet-152 batch). With `M_MMAP_MAX = 0` and a high trim threshold the
/// freed memory stays in the heap and is reused, as TF's own allocator does. Process-wide, so it
/// belongs to the program, not the library. Set `SLIMZOO_NO_MALLOC_TUNING` to skip it.
fn tune_allocator() -> bool {
    if std::env::var_os("SLIMZOO_NO_MALLOC_TUNING").is_some() {
        return false;
    }
    // SAFETY: mallopt only changes allocator parameters; it is called before heavy allocation.
    unsafe { libc::mallopt(libc::M_MMAP_MAX, 0) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1 }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.cmd, Cmd::Check(_) | Cmd::Features(_) | Cmd::Classify(_) | Cmd::Embed(_) | Cmd::Compare(_) | Cmd::Bench(_)) {
        tune_allocator();
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
