//! One table block: prefix-compressed entries followed by a restart array
//! (TF `core/lib/io/block_builder.cc`, `block.cc`; LevelDB `doc/table_format.md`).
//!
//! ```text
//! block   := entry* restart: fixed32[num_restarts] num_restarts: fixed32
//! entry   := shared: varint32 | unshared: varint32 | value_len: varint32
//!            | key_delta: u8[unshared] | value: u8[value_len]
//! ```
//!
//! An entry's key is the first `shared` bytes of the previous key followed by `key_delta`.
//! At every restart point `shared == 0`; `restart[i]` is the byte offset of the i-th restart
//! entry, so a lookup can binary-search the restart points and then scan forward. Entries end
//! where the restart array begins (`len - 4 * (1 + num_restarts)`). Keys are strictly
//! increasing in bytewise order.
//!
//! This layer knows nothing about files: errors are plain reasons that the table layer
//! turns into [`CkptError::CorruptBlock`](super::CkptError::CorruptBlock) with the file and
//! the block offset.

use std::ops::Range;

use super::coding::{decode_varint32, fixed32_at};
use super::error::show_key;

/// A decoded block (trailer already checked and stripped, contents decompressed).
#[derive(Debug)]
pub(crate) struct Block {
    data: Vec<u8>,
    /// Offset of the restart array = end of the entries.
    restarts_at: usize,
    num_restarts: usize,
}

/// One entry: its full key and where its value is in the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: Vec<u8>,
    pub value: Range<usize>,
}

impl Block {
    /// Checks the restart array of `data` and wraps it.
    pub fn new(data: Vec<u8>) -> Result<Block, String> {
        let len = data.len();
        if len < 4 {
            return Err(format!("block of {len} bytes is too short for its restart count"));
        }
        let num_restarts = fixed32_at(&data, len - 4).unwrap_or_default() as usize;
        let max_restarts = (len - 4) / 4;
        if num_restarts > max_restarts {
            return Err(format!("restart count {num_restarts} does not fit in a block of {len} bytes"));
        }
        let restarts_at = len - 4 - 4 * num_restarts;
        let block = Block { data, restarts_at, num_restarts };
        let mut prev: Option<usize> = None;
        for i in 0..num_restarts {
            let r = block.restart(i);
            if r >= restarts_at && !(r == 0 && restarts_at == 0) {
                return Err(format!("restart point {i} at offset {r} is past the entries (which end at {restarts_at})"));
            }
            if prev.is_some_and(|p| r <= p) {
                return Err(format!("restart points are not increasing (entry {i} at offset {r})"));
            }
            prev = Some(r);
        }
        if num_restarts == 0 && restarts_at != 0 {
            return Err("block has entries but no restart points".to_string());
        }
        if num_restarts > 0 && block.restart(0) != 0 {
            return Err("the first restart point is not at offset 0".to_string());
        }
        Ok(block)
    }

    fn restart(&self, i: usize) -> usize {
        fixed32_at(&self.data, self.restarts_at + 4 * i).unwrap_or_default() as usize
    }

    /// The bytes of a value returned by [`iter`](Self::iter) or [`seek`](Self::seek).
    pub fn value(&self, range: Range<usize>) -> &[u8] {
        self.data.get(range).unwrap_or_default()
    }

    /// Decodes the entry at `pos` given the previous key; returns the entry and the offset
    /// of the next one.
    fn decode_at(&self, pos: usize, prev_key: &[u8]) -> Result<(Entry, usize), String> {
        let entries = self.data.get(..self.restarts_at).unwrap_or_default();
        let mut p = pos;
        let mut next = |what: &str| -> Result<usize, String> {
            let rest = entries.get(p..).unwrap_or_default();
            let (v, n) = decode_varint32(rest).ok_or_else(|| format!("bad {what} varint in entry at offset {pos}"))?;
            p += n;
            Ok(v as usize)
        };
        let shared = next("shared-length")?;
        let unshared = next("key-length")?;
        let value_len = next("value-length")?;
        if shared > prev_key.len() {
            return Err(format!("entry at offset {pos} shares {shared} bytes with a previous key of {} bytes", prev_key.len()));
        }
        let key_end = p.checked_add(unshared).filter(|&e| e <= self.restarts_at);
        let value_end = key_end.and_then(|k| k.checked_add(value_len)).filter(|&e| e <= self.restarts_at);
        let (Some(key_end), Some(value_end)) = (key_end, value_end) else {
            return Err(format!(
                "entry at offset {pos} (key {unshared} bytes, value {value_len} bytes) runs past the entries, which end at {}",
                self.restarts_at
            ));
        };
        let mut key = Vec::with_capacity(shared + unshared);
        key.extend_from_slice(prev_key.get(..shared).unwrap_or_default());
        key.extend_from_slice(entries.get(p..key_end).unwrap_or_default());
        Ok((Entry { key, value: key_end..value_end }, value_end))
    }

    /// Iterates over the entries in order, checking that keys strictly increase.
    pub fn iter(&self) -> BlockIter<'_> {
        BlockIter { block: self, pos: 0, prev_key: Vec::new(), first: true, failed: false }
    }

    /// Finds the entry whose key equals `target` (binary search over the restart points,
    /// then a forward scan).
    pub fn seek(&self, target: &[u8]) -> Result<Option<Range<usize>>, String> {
        if self.num_restarts == 0 {
            return Ok(None);
        }
        // Last restart point whose key is < target (or 0).
        let (mut lo, mut hi) = (0usize, self.num_restarts - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let pos = self.restart(mid);
            let (entry, _) = self.decode_at(pos, &[])?;
            if entry.key.as_slice() < target {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let mut iter = BlockIter { block: self, pos: self.restart(lo), prev_key: Vec::new(), first: true, failed: false };
        for item in &mut iter {
            let entry = item?;
            match entry.key.as_slice().cmp(target) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return Ok(Some(entry.value)),
                std::cmp::Ordering::Greater => return Ok(None),
            }
        }
        Ok(None)
    }
}

/// Iterator over a block's entries; stops after the first error.
pub(crate) struct BlockIter<'b> {
    block: &'b Block,
    pos: usize,
    prev_key: Vec<u8>,
    first: bool,
    failed: bool,
}

impl Iterator for BlockIter<'_> {
    type Item = Result<Entry, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.block.restarts_at {
            return None;
        }
        match self.block.decode_at(self.pos, &self.prev_key) {
            Ok((entry, next)) => {
                if !self.first && entry.key.as_slice() <= self.prev_key.as_slice() {
                    self.failed = true;
                    return Some(Err(format!(
                        "keys out of order: '{}' at offset {} does not sort after '{}'",
                        show_key(&entry.key),
                        self.pos,
                        show_key(&self.prev_key)
                    )));
                }
                self.first = false;
                self.pos = next;
                self.prev_key.clone_from(&entry.key);
                Some(Ok(entry))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::writer::BlockBuilder;

    fn build(entries: &[(&[u8], &[u8])], restart_interval: usize) -> Block {
        let mut b = BlockBuilder::new(restart_interval);
        for (k, v) in entries {
            b.add(k, v);
        }
        Block::new(b.finish()).unwrap()
    }

    fn sample() -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..50u32).map(|i| (format!("key/{i:04}/x").into_bytes(), format!("value {i}").into_bytes())).collect()
    }

    #[test]
    fn roundtrip_and_seek_with_every_restart_interval() {
        let data = sample();
        let refs: Vec<(&[u8], &[u8])> = data.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        for interval in [1, 2, 3, 16, 100] {
            let block = build(&refs, interval);
            let got: Vec<(Vec<u8>, Vec<u8>)> = block.iter().map(|e| e.unwrap()).map(|e| (e.key, block.value(e.value).to_vec())).collect();
            assert_eq!(got, data, "interval {interval}");
            for (k, v) in &data {
                let r = block.seek(k).unwrap().unwrap();
                assert_eq!(block.value(r), v.as_slice());
            }
            assert_eq!(block.seek(b"").unwrap(), None);
            assert_eq!(block.seek(b"key/0001").unwrap(), None);
            assert_eq!(block.seek(b"zzz").unwrap(), None);
        }
    }

    #[test]
    fn known_bytes_of_a_tiny_block() {
        let mut b = BlockBuilder::new(16);
        b.add(b"ab", b"1");
        b.add(b"ac", b"2");
        assert_eq!(b.finish(), [0, 2, 1, b'a', b'b', b'1', 1, 1, 1, b'c', b'2', 0, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn empty_block() {
        let b = Block::new(vec![0, 0, 0, 0, 1, 0, 0, 0]).unwrap();
        assert_eq!(b.iter().count(), 0);
        assert_eq!(b.seek(b"a").unwrap(), None);
        let b = Block::new(vec![0, 0, 0, 0]).unwrap();
        assert_eq!(b.iter().count(), 0);
    }

    #[test]
    fn bad_blocks() {
        assert!(Block::new(vec![]).is_err());
        assert!(Block::new(vec![1, 2, 3]).is_err());
        assert!(Block::new(vec![0xff, 0xff, 0xff, 0xff]).unwrap_err().contains("does not fit"));
        // restart pointing past the entries
        assert!(Block::new(vec![9, 0, 0, 0, 1, 0, 0, 0]).is_err());
        // entry whose value runs past the restart array
        let e = Block::new(vec![0, 1, 9, b'a', 0, 0, 0, 0, 1, 0, 0, 0]).unwrap();
        let err = e.iter().next().unwrap().unwrap_err();
        assert!(err.contains("runs past"), "{err}");
        assert!(e.seek(b"a").is_err());
        // shared bytes without a previous key
        let e = Block::new(vec![3, 1, 0, b'a', 0, 0, 0, 0, 1, 0, 0, 0]).unwrap();
        assert!(e.iter().next().unwrap().unwrap_err().contains("shares 3 bytes"));
        // truncated varint
        let e = Block::new(vec![0x80, 0, 0, 0, 0, 1, 0, 0, 0]).unwrap();
        assert!(e.iter().next().unwrap().is_err());
    }

    #[test]
    fn keys_out_of_order_are_reported() {
        let mut b = BlockBuilder::new(16);
        b.add(b"b", b"1");
        b.add(b"a", b"2");
        let block = Block::new(b.finish()).unwrap();
        let results: Vec<_> = block.iter().collect();
        assert_eq!(results.len(), 2);
        assert!(results[1].as_ref().unwrap_err().contains("keys out of order"));
    }
}
