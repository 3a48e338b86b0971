//! The one dtype table: TF's [`DType`] ↔ safetensors' `Dtype` ↔ tch's `Kind`.
//!
//! | TF | safetensors | tch |
//! |---|---|---|
//! | float / double / half / bfloat16 | F32 / F64 / F16 / BF16 | Float / Double / Half / BFloat16 |
//! | int8 / int16 / int32 / int64 | I8 / I16 / I32 / I64 | Int8 / Int16 / Int / Int64 |
//! | uint8 / uint16 / uint32 / uint64 | U8 / U16 / U32 / U64 | Uint8 / – / – / – |
//! | bool | BOOL | Bool |
//! | complex64 | C64 | ComplexFloat |
//! | float8 e5m2 / e4m3fn (24, 25) | F8_E5M2 / F8_E4M3 | Float8e5m2 / Float8e4m3fn |
//!
//! Anything else (strings, variants, resources, complex128, quantized and 4-bit types) has no
//! safetensors equivalent and cannot be converted; the converter says so, naming the tensor.

use crate::ckpt::DType;
use safetensors::Dtype as St;
use tch::Kind;

/// (TF dtype, safetensors dtype, tch kind if libtorch has it).
const TABLE: &[(DType, St, Option<Kind>)] = &[
    (DType::F32, St::F32, Some(Kind::Float)),
    (DType::F64, St::F64, Some(Kind::Double)),
    (DType::F16, St::F16, Some(Kind::Half)),
    (DType::BF16, St::BF16, Some(Kind::BFloat16)),
    (DType::I8, St::I8, Some(Kind::Int8)),
    (DType::I16, St::I16, Some(Kind::Int16)),
    (DType::I32, St::I32, Some(Kind::Int)),
    (DType::I64, St::I64, Some(Kind::Int64)),
    (DType::U8, St::U8, Some(Kind::Uint8)),
    (DType::U16, St::U16, None),
    (DType::U32, St::U32, None),
    (DType::U64, St::U64, None),
    (DType::Bool, St::BOOL, Some(Kind::Bool)),
    (DType::Complex64, St::C64, Some(Kind::ComplexFloat)),
    (DType::Other(24), St::F8_E5M2, Some(Kind::Float8e5m2)),
    (DType::Other(25), St::F8_E4M3, Some(Kind::Float8e4m3fn)),
];

/// The safetensors dtype with the same bytes as a TF dtype.
pub fn to_safetensors(d: DType) -> Option<St> {
    TABLE.iter().find(|(t, _, _)| *t == d).map(|(_, s, _)| *s)
}

/// The TF dtype of a safetensors dtype.
pub fn from_safetensors(s: St) -> Option<DType> {
    TABLE.iter().find(|(_, t, _)| *t == s).map(|(d, _, _)| *d)
}

/// The tch kind of a safetensors dtype, if libtorch has it.
pub fn kind_of(s: St) -> Option<Kind> {
    TABLE.iter().find(|(_, t, _)| *t == s).and_then(|(_, _, k)| *k)
}

/// The safetensors dtype of a tch kind.
pub fn safetensors_of(k: Kind) -> Option<St> {
    TABLE.iter().find(|(_, _, t)| *t == Some(k)).map(|(_, s, _)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent() {
        for (d, s, k) in TABLE {
            assert_eq!(to_safetensors(*d), Some(*s));
            assert_eq!(from_safetensors(*s), Some(*d));
            assert_eq!(Some(s.bitsize() / 8), d.size(), "{d}");
            if let Some(k) = k {
                assert_eq!(kind_of(*s), Some(*k));
                assert_eq!(safetensors_of(*k), Some(*s));
                assert_eq!(k.elt_size_in_bytes(), s.bitsize() / 8, "{d}");
            }
        }
        assert_eq!(to_safetensors(DType::Complex128), None);
        assert_eq!(to_safetensors(DType::String), None);
        assert_eq!(to_safetensors(DType::Other(9999)), None);
    }
}
