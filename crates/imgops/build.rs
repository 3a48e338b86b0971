//! Tells whether libjpeg-turbo gets its x86 SIMD kernels. mozjpeg-sys (feature `nasm_simd`, on
//! through our `simd` feature) assembles them with `nasm` when it is on the PATH and otherwise
//! quietly builds the C kernels. Both decode every valid JPEG to the same pixels; on corrupt
//! files with out-of-range DCT coefficients only the SIMD build matches Pillow / TensorFlow (whose
//! builds use SIMD). So a missing nasm is a warning, not an error, and the crate learns which
//! build it got through `cfg(imgops_simd)` (exported as `imgops::jpeg::SIMD`; the corrupt-file
//! tests compare pixels only with SIMD). `tools/bootstrap.sh torch` installs nasm where it can.
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rustc-check-cfg=cfg(imgops_simd)");
    if std::env::var_os("CARGO_FEATURE_SIMD").is_none() {
        return;
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch != "x86_64" && arch != "x86" {
        // mozjpeg-sys uses the system assembler for ARM/MIPS SIMD; not verified against Pillow/TF.
        println!("cargo::rustc-cfg=imgops_simd");
        return;
    }
    // mozjpeg-sys' own test (nasm_supported): runs, and is not the useless 0.x.
    let nasm = Command::new("nasm").arg("-v").output();
    match nasm {
        Ok(o) if o.status.success() && !String::from_utf8_lossy(&o.stdout).contains("version 0.") => {
            println!("cargo::rustc-cfg=imgops_simd");
        }
        _ => println!(
            "cargo::warning=imgops: nasm not found, libjpeg-turbo is built with its C kernels: identical pixels on valid \
             JPEGs, but corrupt JPEGs may decode differently from Pillow/TF (install nasm, e.g. apt-get install nasm, \
             then `cargo clean -p mozjpeg-sys`)"
        ),
    }
}
