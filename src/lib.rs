pub mod ckpt;
pub fn libtorch_ok() -> bool { tch::Tensor::from_slice(&[1.0f32, 2.0]).sum(tch::Kind::Float).double_value(&[]) == 3.0 }
#[cfg(test)]
mod t { #[test] fn ok() { assert!(super::libtorch_ok()); } }
