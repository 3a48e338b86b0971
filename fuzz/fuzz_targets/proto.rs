#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| slimzoo_fuzz::ckpt::fuzzing::proto(data));
