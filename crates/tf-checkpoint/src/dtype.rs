//! TensorFlow `DataType` numbers (`tensorflow/core/framework/types.proto`), names and element
//! sizes.
//!
//! | TF number | name | bytes | | TF number | name | bytes |
//! |---|---|---|---|---|---|---|
//! | 1 | float | 4 | | 11/12/13 | qint8/quint8/qint32 | 1/1/4 |
//! | 2 | double | 8 | | 14 | bfloat16 | 2 |
//! | 3 | int32 | 4 | | 15/16 | qint16/quint16 | 2/2 |
//! | 4 | uint8 | 1 | | 17 | uint16 | 2 |
//! | 5 | int16 | 2 | | 18 | complex128 | 16 |
//! | 6 | int8 | 1 | | 19 | half | 2 |
//! | 7 | string | var | | 20 | resource | – |
//! | 8 | complex64 | 8 | | 21 | variant | var |
//! | 9 | int64 | 8 | | 22/23 | uint32/uint64 | 4/8 |
//! | 10 | bool | 1 | | 24–28 | float8 variants | 1 |
//! | | | | | 29/30/31/32 | int4/uint4/int2/uint2 | 1 |
//! | | | | | 33 | float4_e2m1fn | 1 |
//!
//! `*_REF` types (base + 100) only appear in graph signatures; [`DType::from_tf`] maps them to
//! their base type defensively. Sub-byte types take one byte per element in a checkpoint (TF's
//! `DataTypeSize`). Any other number is not a TF type: TF's own listing refuses it ("does not
//! correspond to a valid tensorflow::DataType") and reading it aborts TF, so a stored tensor
//! with such a dtype makes the checkpoint an error ([`DType::from_stored`]).

/// The highest `DataType` number TF knows (`DT_FLOAT4_E2M1FN`, TF 2.21).
const LAST_TF_TYPE: i32 = 33;

/// The element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
    Complex64,
    Complex128,
    String,
    Variant,
    Resource,
    /// Any other TF type number (quantized types, float8, int4, invalid 0, ...).
    Other(i32),
}

impl DType {
    /// The dtype of a TF `DataType` number (`*_REF` numbers are mapped to their base type).
    pub fn from_tf(v: i32) -> DType {
        let base = if (101..=199).contains(&v) { v - 100 } else { v };
        match base {
            1 => DType::F32,
            2 => DType::F64,
            3 => DType::I32,
            4 => DType::U8,
            5 => DType::I16,
            6 => DType::I8,
            7 => DType::String,
            8 => DType::Complex64,
            9 => DType::I64,
            10 => DType::Bool,
            14 => DType::BF16,
            17 => DType::U16,
            18 => DType::Complex128,
            19 => DType::F16,
            20 => DType::Resource,
            21 => DType::Variant,
            22 => DType::U32,
            23 => DType::U64,
            other => DType::Other(other),
        }
    }

    /// The dtype of a stored tensor: `from_tf`, except that `DT_INVALID` (0) and numbers that
    /// are not TF types are errors (the reason, for a message naming the tensor).
    pub(crate) fn from_stored(v: i32) -> Result<DType, String> {
        let d = DType::from_tf(v);
        match d {
            DType::Other(0) => Err("its dtype is DT_INVALID (0)".into()),
            DType::Other(_) if d.tf_name() == "unknown" => Err(format!(
                "its dtype number {v} is not a TensorFlow DataType (TF knows 1..={LAST_TF_TYPE} and their _REF variants 101..={})",
                LAST_TF_TYPE + 100
            )),
            d => Ok(d),
        }
    }

    /// The TF `DataType` number.
    pub fn to_tf(&self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::F64 => 2,
            DType::I32 => 3,
            DType::U8 => 4,
            DType::I16 => 5,
            DType::I8 => 6,
            DType::String => 7,
            DType::Complex64 => 8,
            DType::I64 => 9,
            DType::Bool => 10,
            DType::BF16 => 14,
            DType::U16 => 17,
            DType::Complex128 => 18,
            DType::F16 => 19,
            DType::Resource => 20,
            DType::Variant => 21,
            DType::U32 => 22,
            DType::U64 => 23,
            DType::Other(v) => *v,
        }
    }

    /// Bytes per element for fixed-size types; `None` for string, variant, resource and
    /// unknown types.
    pub fn size(&self) -> Option<usize> {
        match self {
            DType::I8 | DType::U8 | DType::Bool => Some(1),
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => Some(2),
            DType::F32 | DType::I32 | DType::U32 => Some(4),
            DType::F64 | DType::I64 | DType::U64 | DType::Complex64 => Some(8),
            DType::Complex128 => Some(16),
            DType::String | DType::Variant | DType::Resource => None,
            DType::Other(v) => match v {
                11 | 12 => Some(1), // qint8, quint8
                13 => Some(4),      // qint32
                15 | 16 => Some(2), // qint16, quint16
                24..=33 => Some(1), // float8 variants, int4/uint4/int2/uint2, float4: a byte each
                _ => None,
            },
        }
    }

    /// The name TF's `DataTypeString` gives the type ("float", "bfloat16", "half", ...).
    pub fn tf_name(&self) -> &'static str {
        match self {
            DType::F32 => "float",
            DType::F64 => "double",
            DType::F16 => "half",
            DType::BF16 => "bfloat16",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::Bool => "bool",
            DType::Complex64 => "complex64",
            DType::Complex128 => "complex128",
            DType::String => "string",
            DType::Variant => "variant",
            DType::Resource => "resource",
            DType::Other(v) => match v {
                0 => "invalid",
                11 => "qint8",
                12 => "quint8",
                13 => "qint32",
                15 => "qint16",
                16 => "quint16",
                24 => "float8_e5m2",
                25 => "float8_e4m3fn",
                26 => "float8_e4m3fnuz",
                27 => "float8_e4m3b11fnuz",
                28 => "float8_e5m2fnuz",
                29 => "int4",
                30 => "uint4",
                31 => "int2",
                32 => "uint2",
                33 => "float4_e2m1fn",
                _ => "unknown",
            },
        }
    }

    /// The name TF's Python API gives the type (`tf.float32.name`: "float32", "float16",
    /// "bfloat16", ...), as `tf.train.load_checkpoint(...).get_variable_to_dtype_map()` shows it.
    pub fn py_name(&self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            other => other.tf_name(),
        }
    }

    /// Whether the tensor's bytes are a fixed number of bytes per element (so `read` works).
    pub fn is_numeric(&self) -> bool {
        self.size().is_some()
    }

    /// The size of the unit to byte-swap for big-endian data (complex numbers swap each part).
    pub(crate) fn swap_unit(&self) -> Option<usize> {
        match self {
            DType::Complex64 => Some(4),
            DType::Complex128 => Some(8),
            other => other.size(),
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DType::Other(v) if self.tf_name() == "unknown" => write!(f, "unknown dtype {v}"),
            _ => f.write_str(self.tf_name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_numbers_roundtrip_for_every_number() {
        for v in -5..=140 {
            let d = DType::from_tf(v);
            if (101..=199).contains(&v) {
                assert_eq!(d, DType::from_tf(v - 100));
            } else {
                assert_eq!(d.to_tf(), v, "{v}");
            }
        }
    }

    #[test]
    fn stored_dtypes_must_be_tf_types() {
        // Every number TF 2.21 knows (types_pb2.DataType), and its _REF variant.
        for v in 1..=LAST_TF_TYPE {
            let d = DType::from_stored(v).unwrap();
            assert_ne!(d.tf_name(), "unknown", "{v}");
            assert_eq!(DType::from_stored(v + 100).unwrap(), d);
        }
        assert_eq!(DType::from_stored(31).unwrap().tf_name(), "int2");
        assert_eq!(DType::from_stored(33).unwrap().size(), Some(1));
        assert_eq!(DType::from_stored(0).unwrap_err(), "its dtype is DT_INVALID (0)");
        for v in [34, 99, 100, 134, 200, 9999, -1, i32::MAX, i32::MIN] {
            let e = DType::from_stored(v).unwrap_err();
            assert_eq!(e, format!("its dtype number {v} is not a TensorFlow DataType (TF knows 1..=33 and their _REF variants 101..=133)"));
        }
    }

    #[test]
    fn names_and_sizes_agree() {
        let all = [
            (DType::F32, "float", Some(4)),
            (DType::F64, "double", Some(8)),
            (DType::F16, "half", Some(2)),
            (DType::BF16, "bfloat16", Some(2)),
            (DType::I8, "int8", Some(1)),
            (DType::I16, "int16", Some(2)),
            (DType::I32, "int32", Some(4)),
            (DType::I64, "int64", Some(8)),
            (DType::U8, "uint8", Some(1)),
            (DType::U16, "uint16", Some(2)),
            (DType::U32, "uint32", Some(4)),
            (DType::U64, "uint64", Some(8)),
            (DType::Bool, "bool", Some(1)),
            (DType::Complex64, "complex64", Some(8)),
            (DType::Complex128, "complex128", Some(16)),
            (DType::String, "string", None),
            (DType::Variant, "variant", None),
            (DType::Resource, "resource", None),
        ];
        for (d, name, size) in all {
            assert_eq!(d.tf_name(), name);
            assert_eq!(d.size(), size, "{name}");
            assert_eq!(DType::from_tf(d.to_tf()), d);
        }
        assert_eq!(DType::from_tf(101), DType::F32, "float_ref");
        assert_eq!(DType::Other(11).size(), Some(1));
        assert_eq!(DType::Other(11).tf_name(), "qint8");
        assert_eq!(DType::Other(77).to_string(), "unknown dtype 77");
        assert_eq!(DType::F32.to_string(), "float");
    }
}
