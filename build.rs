//! Adds an rpath to libtorch's lib folder, so that the `slimzoo` binary and the test executables
//! find `libtorch_cpu.so` at run time without `LD_LIBRARY_PATH`. torch-sys exports the folder it
//! linked against as `DEP_TCH_LIBTORCH_LIB` (its `links = "tch"` key).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
