//! 1. Adds an rpath to libtorch's lib folder, so that the `slimzoo` binary and the test
//!    executables find `libtorch_cpu.so` at run time without `LD_LIBRARY_PATH`. torch-sys exports
//!    the folder it linked against as `DEP_TCH_LIBTORCH_LIB` (its `links = "tch"` key).
//! 2. Compiles `src/nn/fused.cpp`, the small shim to libtorch's oneDNN fused convolutions.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=src/nn/fused.cpp");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not report libtorch's folder (DEP_TCH_LIBTORCH_LIB); run tools/bootstrap.sh torch");
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    let root = PathBuf::from(&lib).parent().map(PathBuf::from).unwrap_or_default();
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .file("src/nn/fused.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("slimzoo_fused");
    println!("cargo:rustc-link-search=native={lib}");
    for l in ["torch_cpu", "c10"] {
        println!("cargo:rustc-link-lib=dylib={l}");
    }
}
