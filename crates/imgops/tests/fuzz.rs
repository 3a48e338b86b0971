//! Brief randomized robustness checks: no function may panic or abort on any input; bad
//! arguments and bad data must come back as `Err`.

mod common;
use common::*;
use imgops::jpeg::{Dct, decode_jpeg, decode_jpeg_rgb, decode_jpeg_tf};

#[test]
fn resizers_never_panic() {
    let mut g = SplitMix64::new(42);
    for i in 0..3000 {
        // Mostly small sizes, sometimes zero, sometimes inconsistent with the buffer length.
        let h = g.below(40) as usize;
        let w = g.below(40) as usize;
        let c = g.below(6) as usize;
        let oh = if i % 50 == 0 { usize::MAX / 3 } else { g.below(60) as usize };
        let ow = g.below(60) as usize;
        let len = if i % 7 == 0 { (h * w * c).saturating_sub(1) } else { h * w * c };
        let src_u8: Vec<u8> = (0..len).map(|_| g.next_u64() as u8).collect();
        let src_f64: Vec<f64> = (0..len)
            .map(|k| match k % 97 {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => -1e300,
                _ => g.next_u64() as f64 / 1e15,
            })
            .collect();
        let a = imgops::resize_area_u8(&src_u8, h, w, c, oh, ow);
        let b = imgops::resize_area_f64(&src_f64, h, w, c, oh, ow);
        let p = imgops::pillow_bilinear_u8(&src_u8, h, w, c, oh, ow);
        let valid = h > 0 && w > 0 && oh > 0 && ow > 0 && len == h * w * c && oh < 1 << 20;
        if valid && (1..=4).contains(&c) {
            assert_eq!(a.as_ref().map(|v| v.len()).ok(), Some(oh * ow * c), "{h}x{w}x{c}->{oh}x{ow}");
            assert_eq!(b.as_ref().map(|v| v.len()).ok(), Some(oh * ow * c));
        } else if !valid {
            assert!(a.is_err() && b.is_err() && p.is_err(), "{h}x{w}x{c}->{oh}x{ow} len {len}");
        }
        if valid && (c == 1 || c == 3) {
            assert_eq!(p.map(|v| v.len()).ok(), Some(oh * ow * c));
        }
    }
}

#[test]
fn large_shrink_and_extreme_ratios() {
    // 1-pixel-wide strips and big factors (exercise the area tables and the linear clamping).
    let src = input_u8(7, 3000 * 3);
    for &(h, w, oh, ow) in &[(3000, 1, 1, 1), (1, 3000, 1, 7), (3000, 1, 7, 500), (1, 3000, 499, 1)] {
        assert_eq!(imgops::resize_area_u8(&src, h, w, 3, oh, ow).map(|v| v.len()).ok(), Some(oh * ow * 3));
        assert_eq!(imgops::pillow_bilinear_rgb8(&src, h, w, oh, ow).map(|v| v.len()).ok(), Some(oh * ow * 3));
    }
}

fn all_jpegs() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let dir = testdata().join("jpeg");
    let mut names: Vec<_> = std::fs::read_dir(&dir).expect("dir").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    names.sort();
    for p in names {
        if std::fs::metadata(&p).map(|m| m.len() < 200_000).unwrap_or(false) {
            v.push(std::fs::read(&p).expect("read"));
        }
    }
    v
}

/// SOF9..SOF15 (arithmetic coding) present before the first SOS.
fn is_arithmetic(d: &[u8]) -> bool {
    d.windows(2).take_while(|w| w != &[0xFF, 0xDA]).any(|w| w[0] == 0xFF && (0xC9..=0xCF).contains(&w[1]) && w[1] != 0xCC)
}

fn decode_all(data: &[u8]) {
    let _ = decode_jpeg(data, Dct::IntegerSlow);
    let _ = decode_jpeg_rgb(data, Dct::IntegerFast);
    let _ = decode_jpeg_tf(data, Dct::IntegerFast);
}

#[test]
fn jpeg_decoders_never_panic_on_corrupt_data() {
    let files = all_jpegs();
    assert!(files.len() > 10);
    let mut g = SplitMix64::new(7);
    // pure garbage, and garbage behind a JPEG signature
    for i in 0..300 {
        let n = g.below(2000) as usize;
        let mut d: Vec<u8> = (0..n).map(|_| g.next_u64() as u8).collect();
        if i % 2 == 0 && d.len() > 2 {
            d[0] = 0xFF;
            d[1] = 0xD8;
        }
        decode_all(&d);
    }
    // mutations of real files: bit flips, byte runs, truncations, splices
    for i in 0..1500 {
        let src = &files[i % files.len()];
        let mut d = src.clone();
        match i % 4 {
            0 => {
                for _ in 0..1 + g.below(8) {
                    let k = g.below(d.len() as u64) as usize;
                    d[k] ^= 1 << g.below(8);
                }
            }
            1 => {
                let k = g.below(d.len() as u64) as usize;
                let n = (g.below(64) as usize).min(d.len() - k);
                let v = g.next_u64() as u8;
                d[k..k + n].iter_mut().for_each(|b| *b = v);
            }
            2 => d.truncate(g.below(d.len() as u64) as usize),
            _ => {
                let other = &files[g.below(files.len() as u64) as usize];
                let k = g.below(d.len() as u64) as usize;
                let j = g.below(other.len() as u64) as usize;
                d.truncate(k);
                d.extend_from_slice(&other[j..]);
            }
        }
        // Header mutations (first 700 bytes) hit the size / table / marker checks.
        if i % 5 == 0 {
            let k = g.below(d.len().min(700) as u64) as usize;
            if k < d.len() {
                d[k] = g.next_u64() as u8;
            }
        }
        decode_all(&d);
    }
}

#[test]
fn truncated_jpeg_is_an_error() {
    for data in all_jpegs() {
        let n = data.len();
        // Pillow refuses arithmetic-coded files larger than its 64 KiB read block outright.
        let whole_ok = decode_jpeg(&data, Dct::IntegerSlow).is_ok();
        for cut in [n / 3, n / 2, n - 100.min(n / 2), n - 2, n - 1] {
            let r = decode_jpeg(&data[..cut], Dct::IntegerSlow);
            if whole_ok && !is_arithmetic(&data) {
                assert_eq!(r.err(), Some(imgops::jpeg::JpegError::Truncated));
            } else {
                // libjpeg's arithmetic decoder cannot suspend: Pillow reports a broken stream.
                assert!(r.is_err());
            }
            assert!(decode_jpeg_tf(&data[..cut], Dct::IntegerFast).is_err());
        }
    }
}

#[test]
fn png_decoder_never_panics() {
    let dir = testdata().join("png");
    let mut files: Vec<Vec<u8>> = Vec::new();
    for e in std::fs::read_dir(&dir).expect("dir").filter_map(|e| e.ok()) {
        files.push(std::fs::read(e.path()).expect("read"));
    }
    let mut g = SplitMix64::new(9);
    for i in 0..2000 {
        let mut d = files[i % files.len()].clone();
        if i % 3 == 0 {
            d.truncate(g.below(d.len() as u64) as usize);
        } else {
            for _ in 0..1 + g.below(4) {
                let k = g.below(d.len() as u64) as usize;
                d[k] = g.next_u64() as u8;
            }
        }
        let _ = imgops::png::decode_png_rgb(&d);
    }
}
