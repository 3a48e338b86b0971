//! What checkpoint a path means ([`Checkpoint::open`](super::Checkpoint::open)'s rules).
//!
//! * `P.index` or `P.data-SSSSS-of-NNNNN` → the V2 checkpoint with prefix `P`.
//! * `P` where `P.index` exists → V2 (TF's own rule: an index wins).
//! * `P-SSSSS-of-NNNNN`, or a prefix `P` with such files next to it → sharded V1; all N must
//!   be there.
//! * any other existing file → a V1 checkpoint table.
//! * a folder (or its `checkpoint` state file) → the checkpoint the state file names (`model_checkpoint_path`,
//!   relative to the folder or absolute; an absolute path that does not exist is retried as
//!   its file name inside the folder), else the only checkpoint in it (`.index` files, V1
//!   shard sets, and other files that end with the table magic number).
//! * `x.zip`, `x.tar.gz`, `x.tgz`, `x.tar` → the checkpoint inside, found by the same rules
//!   over member names (V1 members are recognised by a name containing `.ckpt`);
//!   `x.zip!dir/model.ckpt-275` picks one inside an archive.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::OpenOptions;
use super::archive::{Archive, ArchiveKind};
use super::blob::{Blob, not_a_file};
use super::error::{CkptError, Result};
use super::table::{FOOTER_LEN, TABLE_MAGIC};

/// Largest `checkpoint` state file read.
const MAX_STATE_FILE: u64 = 1 << 20;

/// A file of a checkpoint: on disk or inside an archive.
#[derive(Debug, Clone)]
pub(crate) enum Loc {
    Disk(PathBuf),
    Member(Arc<Archive>, String),
}

impl Loc {
    /// Path or `archive!member`.
    pub fn display(&self) -> String {
        match self {
            Loc::Disk(p) => p.display().to_string(),
            Loc::Member(a, n) => a.member_display(n),
        }
    }

    /// The file named by appending `suffix` to this one's name.
    pub fn with_suffix(&self, suffix: &str) -> Loc {
        match self {
            Loc::Disk(p) => {
                let mut s: OsString = p.clone().into_os_string();
                s.push(suffix);
                Loc::Disk(PathBuf::from(s))
            }
            Loc::Member(a, n) => Loc::Member(Arc::clone(a), format!("{n}{suffix}")),
        }
    }

    /// Whether it exists as a regular file.
    pub fn is_file(&self) -> bool {
        match self {
            Loc::Disk(p) => p.is_file(),
            Loc::Member(a, n) => a.member(n).is_some_and(|m| m.is_file),
        }
    }

    /// Opens it for random access.
    pub fn open(&self) -> Result<Blob> {
        match self {
            Loc::Disk(p) => Blob::open_file(p),
            Loc::Member(a, n) => a.blob(n),
        }
    }
}

/// The files on disk behind `locs` (an archive member's is the archive), each once.
pub(crate) fn disk_files(locs: &[Loc]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(locs.len());
    for l in locs {
        let p = match l {
            Loc::Disk(p) => p.clone(),
            Loc::Member(a, _) => a.path().to_path_buf(),
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// A resolved checkpoint.
#[derive(Debug)]
pub(crate) enum Target {
    V2 { prefix: Loc },
    V1 { files: Vec<Loc>, shown: String },
}

/// What a file name says about its role.
#[derive(Debug, PartialEq, Eq)]
enum NameKind<'a> {
    /// `P.index`
    Index(&'a str),
    /// `P.data-SSSSS-of-NNNNN`
    DataShard(&'a str),
    /// `P-SSSSS-of-NNNNN`
    V1Shard(&'a str, u32, u32),
    Other,
}

/// Splits `PREFIX{sep}-SSSSS-of-NNNNN` (at least 5 digits each, TF's `%05d`).
pub(crate) fn split_shard_suffix<'a>(name: &'a str, sep: &str) -> Option<(&'a str, u32, u32)> {
    let (head, total) = name.rsplit_once("-of-")?;
    let (head, index) = head.rsplit_once('-')?;
    let prefix = head.strip_suffix(sep)?;
    let digits = |s: &str| s.len() >= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if prefix.is_empty() || !digits(index) || !digits(total) {
        return None;
    }
    Some((prefix, index.parse().ok()?, total.parse().ok()?))
}

fn classify(name: &str) -> NameKind<'_> {
    if let Some(p) = name.strip_suffix(".index").filter(|p| !p.is_empty()) {
        return NameKind::Index(p);
    }
    if let Some((p, _, _)) = split_shard_suffix(name, ".data") {
        return NameKind::DataShard(p);
    }
    if let Some((p, i, n)) = split_shard_suffix(name, "") {
        return NameKind::V1Shard(p, i, n);
    }
    NameKind::Other
}

/// Archive members that look like a V1 checkpoint by name.
fn looks_like_v1_member(name: &str) -> bool {
    const NOT_CHECKPOINTS: [&str; 9] = [".meta", ".pb", ".pbtxt", ".txt", ".json", ".tflite", ".graph", ".index", ".tempstate"];
    name.contains(".ckpt") && !NOT_CHECKPOINTS.iter().any(|ext| name.ends_with(ext)) && !name.contains(".tempstate")
}

/// Reads `model_checkpoint_path: "..."` from a `checkpoint` state file (text protobuf).
fn parse_state(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("model_checkpoint_path")?;
        let rest = rest.trim_start().strip_prefix(':')?.trim();
        Some(unquote(rest))
    })?
}

/// Unquotes a text-format string literal (`"..."` or `'...'`, C escapes).
fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = s.strip_prefix(q)?.strip_suffix(q)?;
    let mut out = Vec::new();
    let bytes = inner.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let e = *bytes.get(i)?;
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(v).ok()?);
            }
            b'x' => {
                let hex = inner.get(i..i + 2)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

fn has_table_magic(path: &Path) -> bool {
    let Ok(blob) = Blob::open_file(path) else {
        return false;
    };
    let Ok(len) = blob.len() else { return false };
    if len < FOOTER_LEN {
        return false;
    }
    let mut tail = [0u8; 8];
    blob.read_exact_at(len - 8, &mut tail).is_ok() && u64::from_le_bytes(tail) == TABLE_MAGIC
}

/// Finds the checkpoint `path` means.
pub(crate) fn resolve(path: &Path, opts: &OpenOptions) -> Result<Target> {
    if path.is_file()
        && let Some(kind) = ArchiveKind::of(path)
    {
        let a = Archive::open(path, kind, opts)?;
        return resolve_in_archive(&a, None);
    }
    if !path.exists()
        && let Some((archive, member)) = split_archive_path(path)
    {
        let kind = ArchiveKind::of(&archive)
            .ok_or_else(|| CkptError::Resolve { path: path.display().to_string(), reason: "unknown archive type".into() })?;
        let a = Archive::open(&archive, kind, opts)?;
        return resolve_in_archive(&a, Some(&member));
    }
    check_accessible(path)?;
    if path.is_dir() {
        return resolve_dir(path);
    }
    resolve_disk_file(path)
}

/// Refuses a path that exists but is neither a file nor a folder (a FIFO would block the
/// reader, a device never ends), or that cannot be followed (a symbolic link loop).
fn check_accessible(path: &Path) -> Result<()> {
    let shown = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => Err(CkptError::Resolve { path: shown, reason: not_a_file(&meta) }),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CkptError::io(shown, "cannot be opened", e)),
        _ => Ok(()),
    }
}

/// `archive.zip!member` → (archive path, member).
fn split_archive_path(path: &Path) -> Option<(PathBuf, String)> {
    let s = path.to_str()?;
    s.match_indices('!').map(|(i, _)| i).rev().find_map(|i| {
        let (left, right) = (s.get(..i)?, s.get(i + 1..)?);
        let p = Path::new(left);
        (p.is_file() && ArchiveKind::of(p).is_some()).then(|| (p.to_path_buf(), right.to_string()))
    })
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|n| n.to_str())
}

fn resolve_disk_file(path: &Path) -> Result<Target> {
    let shown = path.display().to_string();
    let name = file_name(path).unwrap_or_default();
    let kind = classify(name);
    if path.is_file() && name == "checkpoint" {
        // The state file itself: open what it names.
        if let Some(dir) = path.parent().filter(|d| d.is_dir()) {
            return resolve_dir(dir);
        }
    }
    if path.is_file() {
        return match kind {
            NameKind::Index(prefix) => Ok(Target::V2 { prefix: Loc::Disk(path.with_file_name(prefix)) }),
            NameKind::DataShard(prefix) => {
                let p = Loc::Disk(path.with_file_name(prefix));
                if p.with_suffix(".index").is_file() {
                    Ok(Target::V2 { prefix: p })
                } else {
                    // Without its index a data shard cannot be read (it has no header).
                    Err(CkptError::DataShardAsTable { file: shown })
                }
            }
            NameKind::V1Shard(prefix, _, n) => {
                let dir = path.parent().unwrap_or(Path::new(""));
                disk_v1_shards(dir, prefix, Some(n))?.ok_or_else(|| CkptError::NotFound { file: shown, reason: "no shard files".into() })
            }
            NameKind::Other => {
                let loc = Loc::Disk(path.to_path_buf());
                if loc.with_suffix(".index").is_file() {
                    Ok(Target::V2 { prefix: loc })
                } else {
                    Ok(Target::V1 { files: vec![loc], shown })
                }
            }
        };
    }
    let loc = Loc::Disk(path.to_path_buf());
    if let Loc::Disk(index) = loc.with_suffix(".index") {
        check_accessible(&index)?;
        if index.is_file() {
            return Ok(Target::V2 { prefix: loc });
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !name.is_empty()
        && dir.is_dir()
        && let Some(t) = disk_v1_shards(dir, name, None)?
    {
        return Ok(t);
    }
    Err(CkptError::NotFound {
        file: shown.clone(),
        reason: format!("there is no such file, no {shown}.index and no sharded V1 files {shown}-?????-of-?????"),
    })
}

fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let shown = dir.display().to_string();
    let rd = std::fs::read_dir(dir).map_err(|e| CkptError::io(&shown, "could not list the folder", e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| CkptError::io(&shown, "could not list the folder", e))?;
        let path = entry.path();
        if let Some(name) = file_name(&path)
            && path.is_file()
        {
            out.push((name.to_string(), path.clone()));
        }
    }
    out.sort();
    Ok(out)
}

/// The shard set `prefix-?????-of-N` in `dir` (N given or found), all shards required.
fn disk_v1_shards(dir: &Path, prefix: &str, n: Option<u32>) -> Result<Option<Target>> {
    let shown = dir.join(prefix).display().to_string();
    let counts: BTreeSet<u32> = list_dir(dir)?
        .iter()
        .filter_map(|(name, _)| match classify(name) {
            NameKind::V1Shard(p, _, total) if p == prefix && n.is_none_or(|n| n == total) => Some(total),
            _ => None,
        })
        .collect();
    let Some(total) = one_shard_count(&counts, &shown, "files", "; open one set by a shard file's name")? else {
        return Ok(None);
    };
    let mut files = Vec::with_capacity(total as usize);
    for i in 0..total {
        let p = dir.join(format!("{prefix}-{i:05}-of-{total:05}"));
        if !p.is_file() {
            return Err(CkptError::MissingShard { file: shown, shard: i, num_shards: total, missing: p.display().to_string() });
        }
        files.push(Loc::Disk(p));
    }
    Ok(Some(Target::V1 { files, shown }))
}

fn resolve_dir(dir: &Path) -> Result<Target> {
    let shown = dir.display().to_string();
    let state = dir.join("checkpoint");
    if state.is_file() {
        let state_shown = state.display().to_string();
        let blob = Blob::open_file(&state)?;
        let text = blob.read_vec(0, blob.len()?.min(MAX_STATE_FILE))?;
        let text = String::from_utf8_lossy(&text);
        let named = parse_state(&text).ok_or_else(|| CkptError::Resolve {
            path: state_shown.clone(),
            reason: "the checkpoint state file has no model_checkpoint_path line".into(),
        })?;
        let direct = if Path::new(&named).is_absolute() { PathBuf::from(&named) } else { dir.join(&named) };
        let mut tries = vec![direct];
        if let Some(base) = Path::new(&named).file_name() {
            let local = dir.join(base);
            if !tries.contains(&local) {
                tries.push(local);
            }
        }
        for t in &tries {
            match resolve_disk_file(t) {
                Err(CkptError::NotFound { .. }) => continue,
                other => return other,
            }
        }
        return Err(CkptError::Resolve {
            path: state_shown,
            reason: format!("names model_checkpoint_path \"{named}\", which was not found"),
        });
    }
    let mut candidates: BTreeSet<(String, bool)> = BTreeSet::new(); // (prefix name, is_v2)
    for (name, path) in list_dir(dir)? {
        match classify(&name) {
            NameKind::Index(p) => {
                candidates.insert((p.to_string(), true));
            }
            NameKind::DataShard(_) => {}
            NameKind::V1Shard(p, _, _) => {
                candidates.insert((p.to_string(), false));
            }
            NameKind::Other => {
                if name != "checkpoint" && has_table_magic(&path) {
                    candidates.insert((name.clone(), false));
                }
            }
        }
    }
    let list: Vec<&(String, bool)> = candidates.iter().collect();
    match list.as_slice() {
        [] => Err(CkptError::Resolve {
            path: shown,
            reason: "contains no checkpoint: no `checkpoint` state file, no .index file and no V1 checkpoint table".into(),
        }),
        [(name, _)] => resolve_disk_file(&dir.join(name)),
        many => Err(CkptError::Resolve {
            path: shown,
            reason: format!(
                "contains {} checkpoints ({}); open one of them by its path",
                many.len(),
                many.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

fn split_member(name: &str) -> (&str, &str) {
    match name.rsplit_once('/') {
        Some((dir, base)) => (dir, base),
        None => ("", name),
    }
}

fn join_member(dir: &str, base: &str) -> String {
    if dir.is_empty() { base.to_string() } else { format!("{dir}/{base}") }
}

fn resolve_in_archive(a: &Arc<Archive>, spec: Option<&str>) -> Result<Target> {
    if let Some(spec) = spec {
        let name = spec.trim_start_matches("./").trim_end_matches('/');
        return resolve_member(a, name);
    }
    let states: Vec<&str> =
        a.members().iter().filter(|m| m.is_file && split_member(&m.name).1 == "checkpoint").map(|m| m.name.as_str()).collect();
    if let [state] = states.as_slice() {
        let member = a.member(state).map(|m| m.size).unwrap_or_default();
        if member > MAX_STATE_FILE {
            return Err(CkptError::ArchiveMember {
                archive: a.display().to_string(),
                member: state.to_string(),
                reason: "the checkpoint state file is too large".into(),
            });
        }
        let text = a.read(state)?;
        let named = parse_state(&String::from_utf8_lossy(&text)).ok_or_else(|| CkptError::Resolve {
            path: a.member_display(state),
            reason: "the checkpoint state file has no model_checkpoint_path line".into(),
        })?;
        let (dir, _) = split_member(state);
        let base = named.rsplit(['/', '\\']).next().unwrap_or(&named);
        let mut tries = Vec::new();
        if !Path::new(&named).is_absolute() {
            tries.push(join_member(dir, &named));
        }
        tries.push(join_member(dir, base));
        for t in &tries {
            match resolve_member(a, t) {
                Err(CkptError::NotFound { .. }) => continue,
                other => return other,
            }
        }
        return Err(CkptError::Resolve {
            path: a.member_display(state),
            reason: format!("names model_checkpoint_path \"{named}\", which is not in the archive"),
        });
    }
    let mut candidates: BTreeSet<String> = BTreeSet::new();
    for m in a.members().iter().filter(|m| m.is_file) {
        let (dir, base) = split_member(&m.name);
        match classify(base) {
            NameKind::Index(p) => {
                candidates.insert(join_member(dir, p));
            }
            NameKind::DataShard(_) => {}
            NameKind::V1Shard(p, _, _) => {
                candidates.insert(join_member(dir, p));
            }
            NameKind::Other => {
                if looks_like_v1_member(base) {
                    candidates.insert(m.name.clone());
                }
            }
        }
    }
    let list: Vec<&String> = candidates.iter().collect();
    match list.as_slice() {
        [] => Err(CkptError::Resolve {
            path: a.display().to_string(),
            reason: "contains no checkpoint: no .index member and no member named like a V1 checkpoint (*.ckpt*)".into(),
        }),
        [one] => resolve_member(a, one),
        many => Err(CkptError::Resolve {
            path: a.display().to_string(),
            reason: format!(
                "contains {} checkpoints ({}); pick one as ARCHIVE!MEMBER",
                many.len(),
                many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

fn resolve_member(a: &Arc<Archive>, name: &str) -> Result<Target> {
    let (dir, base) = split_member(name);
    let loc = |n: String| Loc::Member(Arc::clone(a), n);
    if let Some(m) = a.member(name) {
        if !m.is_file {
            return Err(CkptError::ArchiveMember {
                archive: a.display().to_string(),
                member: name.to_string(),
                reason: "is not a regular file (folders and links inside archives are not followed)".into(),
            });
        }
        return match classify(base) {
            NameKind::Index(p) => Ok(Target::V2 { prefix: loc(join_member(dir, p)) }),
            NameKind::DataShard(p) => {
                let prefix = loc(join_member(dir, p));
                if prefix.with_suffix(".index").is_file() {
                    Ok(Target::V2 { prefix })
                } else {
                    Err(CkptError::DataShardAsTable { file: a.member_display(name) })
                }
            }
            NameKind::V1Shard(p, _, n) => member_v1_shards(a, &join_member(dir, p), Some(n))?
                .ok_or_else(|| CkptError::NotFound { file: a.member_display(name), reason: "no shard members".into() }),
            NameKind::Other => {
                let l = loc(name.to_string());
                if l.with_suffix(".index").is_file() {
                    Ok(Target::V2 { prefix: l })
                } else {
                    Ok(Target::V1 { files: vec![l], shown: a.member_display(name) })
                }
            }
        };
    }
    let l = loc(name.to_string());
    if l.with_suffix(".index").is_file() {
        return Ok(Target::V2 { prefix: l });
    }
    if let Some(t) = member_v1_shards(a, name, None)? {
        return Ok(t);
    }
    Err(CkptError::NotFound {
        file: a.member_display(name),
        reason: "the archive has no such member, no .index for it and no -?????-of-????? shards of it".into(),
    })
}

fn member_v1_shards(a: &Arc<Archive>, prefix: &str, n: Option<u32>) -> Result<Option<Target>> {
    let shown = a.member_display(prefix);
    let (pdir, pbase) = split_member(prefix);
    let counts: BTreeSet<u32> = a
        .members()
        .iter()
        .filter(|m| m.is_file)
        .filter_map(|m| {
            let (dir, base) = split_member(&m.name);
            match classify(base) {
                NameKind::V1Shard(p, _, total) if dir == pdir && p == pbase && n.is_none_or(|n| n == total) => Some(total),
                _ => None,
            }
        })
        .collect();
    let Some(total) = one_shard_count(&counts, &shown, "members", "")? else {
        return Ok(None);
    };
    let mut files = Vec::with_capacity(total as usize);
    for i in 0..total {
        let name = format!("{prefix}-{i:05}-of-{total:05}");
        let l = Loc::Member(Arc::clone(a), name);
        if !l.is_file() {
            return Err(CkptError::MissingShard { file: shown, shard: i, num_shards: total, missing: l.display() });
        }
        files.push(l);
    }
    Ok(Some(Target::V1 { files, shown }))
}

/// The one shard count `-?????-of-N` files share, None when there are none; several counts are
/// ambiguous and an error.
fn one_shard_count(counts: &BTreeSet<u32>, shown: &str, what: &str, hint: &str) -> Result<Option<u32>> {
    match (counts.len(), counts.first()) {
        (0, _) => Ok(None),
        (1, Some(&t)) => Ok(Some(t)),
        _ => Err(CkptError::Resolve {
            path: shown.to_string(),
            reason: format!("has shard {what} for different shard counts ({counts:?}){hint}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_classes() {
        assert_eq!(classify("model.ckpt-5.index"), NameKind::Index("model.ckpt-5"));
        assert_eq!(classify("m.data-00000-of-00001"), NameKind::DataShard("m"));
        assert_eq!(classify("m.ckpt-00001-of-00004"), NameKind::V1Shard("m.ckpt", 1, 4));
        assert_eq!(classify("m.ckpt"), NameKind::Other);
        assert_eq!(classify(".index"), NameKind::Other);
        assert_eq!(classify("m-1-of-2"), NameKind::Other);
        assert_eq!(classify("-00000-of-00001"), NameKind::Other);
        assert!(looks_like_v1_member("resnet_v2_50.ckpt"));
        assert!(looks_like_v1_member("model.ckpt-1234"));
        assert!(!looks_like_v1_member("model.ckpt.meta"));
        assert!(!looks_like_v1_member("eval.graph"));
    }

    #[test]
    fn state_file_parsing() {
        let text = "model_checkpoint_path: \"model.ckpt-20\"\nall_model_checkpoint_paths: \"model.ckpt-10\"\n";
        assert_eq!(parse_state(text).unwrap(), "model.ckpt-20");
        assert_eq!(parse_state("model_checkpoint_path: '/abs/m\\\"x\\101'").unwrap(), "/abs/m\"xA");
        assert_eq!(parse_state("model_checkpoint_path:\"a\\x41\\n\"").unwrap(), "aA\n");
        assert_eq!(parse_state("all_model_checkpoint_paths: \"x\""), None);
        assert_eq!(parse_state("model_checkpoint_path: unquoted"), None);
        assert_eq!(parse_state("model_checkpoint_path: \"bad\\"), None);
    }
}
