//! Reading Arrow columns into plain Rust values, by column name, with a typed error (never a
//! panic) when a column is missing or has another type. Strings are read from any string
//! encoding (`Utf8`, `LargeUtf8`, `Utf8View`, or a dictionary of those).

use crate::EngineError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float64Type, Int32Type, Int64Type, TimeUnit,
    TimestampNanosecondType, UInt32Type, UInt64Type,
};

/// The column `name` of `batch`.
pub fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, EngineError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| EngineError::Column {
            column: name.to_owned(),
            detail: "no such column".to_owned(),
        })
}

fn mismatch(name: &str, expected: &str, found: &DataType) -> EngineError {
    EngineError::Column {
        column: name.to_owned(),
        detail: format!("expected {expected}, found {found}"),
    }
}

/// An integer or nanosecond-timestamp column as `i64`s (nulls, and unsigned values past
/// `i64::MAX`, read as 0).
pub fn i64s(batch: &RecordBatch, name: &str) -> Result<Vec<i64>, EngineError> {
    let array = column(batch, name)?;
    let values: Vec<i64> = match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().iter().collect_values(),
        t if t.is_integer() => {
            let wide = cast(array, &DataType::Int64).map_err(|e| EngineError::Column {
                column: name.to_owned(),
                detail: e.to_string(),
            })?;
            wide.as_primitive::<Int64Type>().iter().collect_values()
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => array
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .collect_values(),
        other => return Err(mismatch(name, "Int64 or Timestamp(ns)", other)),
    };
    Ok(values)
}

/// The values of a primitive column of exactly type `T`, borrowed (no copy; what a null holds
/// is unspecified, so use it on columns that have none, such as the decoders').
pub fn values<'a, T: ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a [T::Native], EngineError> {
    let array = column(batch, name)?;
    array
        .as_primitive_opt::<T>()
        .map(|a| a.values().as_ref())
        .ok_or_else(|| mismatch(name, &T::DATA_TYPE.to_string(), array.data_type()))
}

/// A dictionary column of strings with `Int32` keys (how the decoders give every repeated
/// string), borrowed.
pub fn string_dictionary<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a DictionaryArray<Int32Type>, EngineError> {
    let array = column(batch, name)?;
    array
        .as_dictionary_opt::<Int32Type>()
        .filter(|d| d.values().as_string_opt::<i32>().is_some())
        .ok_or_else(|| mismatch(name, "Dictionary(Int32, Utf8)", array.data_type()))
}

/// A `UInt64` column's values, borrowed ([`values`]).
pub fn u64_values<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a [u64], EngineError> {
    values::<UInt64Type>(batch, name)
}

/// A `UInt32` column's values, borrowed ([`values`]).
pub fn u32_values<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a [u32], EngineError> {
    values::<UInt32Type>(batch, name)
}

/// An `Int64` column's values, borrowed ([`values`]).
pub fn i64_values<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a [i64], EngineError> {
    values::<Int64Type>(batch, name)
}

/// A `UInt32` column as `u32`s (nulls read as 0).
pub fn u32s(batch: &RecordBatch, name: &str) -> Result<Vec<u32>, EngineError> {
    let array = column(batch, name)?;
    match array.data_type() {
        DataType::UInt32 => Ok(array.as_primitive::<UInt32Type>().iter().collect_values()),
        other => Err(mismatch(name, "UInt32", other)),
    }
}

/// A `Float64` column as `f64`s (nulls read as NaN).
pub fn f64s(batch: &RecordBatch, name: &str) -> Result<Vec<f64>, EngineError> {
    let array = column(batch, name)?;
    match array.data_type() {
        DataType::Float64 => Ok(array
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect()),
        other => Err(mismatch(name, "Float64", other)),
    }
}

fn is_string(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_string(value),
        _ => false,
    }
}

/// A string column (any string encoding) as `String`s (nulls read as empty).
pub fn strings(batch: &RecordBatch, name: &str) -> Result<Vec<String>, EngineError> {
    let array = column(batch, name)?;
    if !is_string(array.data_type()) {
        return Err(mismatch(name, "a string", array.data_type()));
    }
    let utf8 = cast(array, &DataType::Utf8).map_err(|e| EngineError::Column {
        column: name.to_owned(),
        detail: e.to_string(),
    })?;
    let utf8 = utf8.as_string::<i32>();
    Ok((0..utf8.len())
        .map(|i| {
            if utf8.is_null(i) {
                String::new()
            } else {
                utf8.value(i).to_owned()
            }
        })
        .collect())
}

/// Collects an iterator of nullable values with nulls as the type's default.
trait CollectValues<T> {
    fn collect_values(self) -> Vec<T>;
}

impl<T: Default, I: Iterator<Item = Option<T>>> CollectValues<T> for I {
    fn collect_values(self) -> Vec<T> {
        self.map(Option::unwrap_or_default).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        DictionaryArray, Float64Array, Int64Array, StringArray, StringViewArray,
    };
    use datafusion::arrow::datatypes::Int32Type;
    use std::sync::Arc;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn strings_read_every_string_encoding() {
        let dict: DictionaryArray<Int32Type> = vec!["a", "b", "a"].into_iter().collect();
        let b = batch(vec![
            ("plain", Arc::new(StringArray::from(vec!["a", "b", "a"]))),
            ("view", Arc::new(StringViewArray::from(vec!["a", "b", "a"]))),
            ("dict", Arc::new(dict)),
        ]);
        for name in ["plain", "view", "dict"] {
            assert_eq!(strings(&b, name).unwrap(), ["a", "b", "a"], "{name}");
        }
    }

    #[test]
    fn a_type_mismatch_or_a_missing_column_is_an_error_not_a_panic() {
        let b = batch(vec![
            ("n", Arc::new(Int64Array::from(vec![1, 2]))),
            ("s", Arc::new(StringArray::from(vec!["x", "y"]))),
            ("f", Arc::new(Float64Array::from(vec![1.5, 2.5]))),
        ]);
        assert_eq!(i64s(&b, "n").unwrap(), [1, 2]);
        let small = batch(vec![(
            "u",
            Arc::new(datafusion::arrow::array::UInt32Array::from(vec![7, 8])) as ArrayRef,
        )]);
        assert_eq!(i64s(&small, "u").unwrap(), [7, 8]);
        assert_eq!(f64s(&b, "f").unwrap(), [1.5, 2.5]);
        for result in [
            strings(&b, "n").map(|_| ()),
            i64s(&b, "s").map(|_| ()),
            f64s(&b, "n").map(|_| ()),
            u32s(&b, "f").map(|_| ()),
            i64s(&b, "missing").map(|_| ()),
        ] {
            let error = result.unwrap_err();
            assert!(matches!(error, EngineError::Column { .. }), "{error}");
        }
        assert!(
            i64s(&b, "s")
                .unwrap_err()
                .to_string()
                .contains("expected Int64")
        );
    }
}
