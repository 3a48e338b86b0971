//! `slimzoo`: TF-slim model-zoo checkpoints on libtorch, from the command line.

mod bench;
mod check;
mod classify;
mod common;
mod convert;
mod embed;
mod faces;
mod features;
mod inspect;

use clap::{Parser, Subcommand};
use std::fmt::Display;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Mutex;

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
    Detect(faces::Detect),
    Align(faces::Align),
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
        Cmd::Detect(c) => c.run(),
        Cmd::Align(c) => c.run(),
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

/// A clap value parser for a whole number in `lo..=hi` whose message states the range, so that
/// an option is refused before anything is allocated or handed to libtorch (use it with
/// `allow_negative_numbers = true`, so that `-1` is a value, not an unknown flag).
pub fn int_in<T>(lo: T, hi: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |s: &str| match s.trim().parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Ok(v),
        _ => Err(format!("expected a whole number in {lo}..={hi}")),
    }
}

/// A clap value parser for a number in `lo..=hi`, NaN and infinities refused (use it with
/// `allow_negative_numbers = true`).
pub fn float_in(lo: f64, hi: f64) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    float_where(move |v| v >= lo && v <= hi, format!("expected a number in {lo}..={hi}"))
}

/// A clap value parser for a number strictly between `lo` and `hi`, NaN refused.
pub fn float_between(lo: f64, hi: f64) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    float_where(move |v| v > lo && v < hi, format!("expected a number strictly between {lo} and {hi}"))
}

fn float_where(
    ok: impl Fn(f64) -> bool + Clone + Send + Sync + 'static,
    expected: String,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| match s.trim().parse::<f64>() {
        // A NaN fails every comparison, so `ok` refuses it.
        Ok(v) if ok(v) => Ok(v),
        _ => Err(expected.clone()),
    }
}

/// Help and version go to stdout (exit 0); a usage error is one `slimzoo: error:` message with
/// clap's explanation and usage lines, exit code 1, like every other error.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("slimzoo: error: a subcommand is required\n\n{}", e.render().to_string().trim_end());
            ExitCode::FAILURE
        }
        _ => {
            let text = e.render().to_string();
            let text = text.trim();
            eprintln!("slimzoo: error: {}", text.strip_prefix("error: ").unwrap_or(text));
            ExitCode::FAILURE
        }
    }
}

/// Temporary folders of this run, removed by the signal handler too (their `TempDir` guards do
/// not run when the process is interrupted).
static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A temporary folder that an interrupted run removes as well.
pub fn temp_dir() -> anyhow::Result<tempfile::TempDir> {
    // Locked from creation to registration: the signal handler cannot miss the folder.
    let mut dirs = TEMP_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir()?;
    dirs.push(dir.path().to_path_buf());
    Ok(dir)
}

/// SIGINT and SIGTERM: the temporary files being written and the temporary folders are removed,
/// and the process exits with 128 + the signal (130, 143) at once, without running destructors
/// (libtorch's threads may still be working).
fn handle_signals() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let mut removed = slimzoo::ckpt::atomic::remove_in_progress();
            // Held until the process exits: no temporary folder is made after this.
            let mut dirs = TEMP_DIRS.lock().unwrap_or_else(|e| e.into_inner());
            for dir in dirs.drain(..) {
                removed += usize::from(std::fs::remove_dir_all(dir).is_ok());
            }
            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
            let note =
                if removed > 0 { format!("; removed {removed} unfinished output file(s) and temporary folder(s)") } else { String::new() };
            eprintln!("slimzoo: interrupted by {name}{note}");
            // SAFETY: _exit ends the process at once; nothing here is used after it.
            unsafe { libc::_exit(128 + sig) }
        }
    })?;
    Ok(())
}

/// The error chain as one message: causes joined by ": " (anyhow's `{:#}`), libtorch's C++
/// stack trace (`Exception raised from …`, `frame #…`) cut from any message that carries one.
fn render(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for c in e.chain() {
        let text = match c.downcast_ref::<tch::TchError>() {
            Some(t) => slimzoo::error::torch_message(t),
            None => {
                let text = c.to_string();
                match text.find("Exception raised from") {
                    Some(at) => text[..at].trim_end().to_string(),
                    None => text,
                }
            }
        };
        // An error that prints its source (`path: what the OS said`) is not followed by that
        // source again.
        if !message.ends_with(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Err(e) = handle_signals() {
        eprintln!("slimzoo: warning: no SIGINT/SIGTERM handler ({e}); an interrupted write may leave a temporary file");
    }
    if matches!(
        cli.cmd,
        Cmd::Check(_)
            | Cmd::Features(_)
            | Cmd::Classify(_)
            | Cmd::Embed(_)
            | Cmd::Compare(_)
            | Cmd::Detect(_)
            | Cmd::Align(_)
            | Cmd::Bench(_)
    ) {
        tune_allocator();
    }
    match run(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `slimzoo inspect x | head` is not an error.
            if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) {
                return ExitCode::SUCCESS;
            }
            eprintln!("slimzoo: error: {}", render(&e));
            ExitCode::FAILURE
        }
    }
}
