//! The nets, rebuilt on tch with TF's variable names and semantics.
pub mod endpoints;
pub mod fast;
pub mod layers;
pub mod resnet_v2;
pub mod inception_resnet_v1;
pub mod fused;
