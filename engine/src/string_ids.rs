//! Grouping strings by integer ids: `frameline_string_id(d)` maps each string of a dictionary
//! column to an id (the same string, the same id, across every batch and block of one query),
//! and `frameline_string_of(id)` maps ids back. Each batch interns only its dictionary's values
//! (a block's few hundred names), then gathers one id per row; DataFusion then groups an `Int32`
//! column — its fastest path — instead of hashing a string per row. The table lives as long as
//! the query's plan (the rule makes one per aggregate), so a `GROUP BY message` does not grow
//! anything beyond its query.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Int32Array, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

/// Each string's id, and the strings by id.
type Table = (HashMap<Arc<str>, i32>, Vec<Arc<str>>);

/// The strings seen by one query, each with its id (its index).
#[derive(Debug, Default)]
pub struct StringIds {
    table: Mutex<Table>,
}

impl StringIds {
    /// The ids of `values`, interning the new ones; an error past 2^31 distinct strings.
    fn ids_of(&self, values: &StringArray) -> DfResult<Vec<i32>> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let (index, strings) = &mut *table;
        let mut ids = Vec::with_capacity(values.len());
        for i in 0..values.len() {
            let value = if values.is_null(i) {
                ""
            } else {
                values.value(i)
            };
            if let Some(&id) = index.get(value) {
                ids.push(id);
                continue;
            }
            let Ok(id) = i32::try_from(strings.len()) else {
                return exec_err!("more than 2^31 distinct strings to group by");
            };
            let value: Arc<str> = Arc::from(value);
            strings.push(value.clone());
            index.insert(value, id);
            ids.push(id);
        }
        Ok(ids)
    }

    /// The string of each id (null for a null or unknown id).
    fn strings_of(&self, ids: &Int32Array) -> StringArray {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        ids.iter()
            .map(|id| id.and_then(|id| table.1.get(usize::try_from(id).ok()?).cloned()))
            .map(|s| s.map(|s| s.to_string()))
            .collect()
    }
}

/// The two functions over one table of strings.
pub fn string_id_functions() -> (ScalarUDF, ScalarUDF) {
    let ids = Arc::new(StringIds::default());
    (
        ScalarUDF::new_from_impl(StringIdOf::new(ids.clone())),
        ScalarUDF::new_from_impl(StringOfId::new(ids)),
    )
}

/// `frameline_string_id(dictionary of strings) -> Int32`.
#[derive(Debug)]
struct StringIdOf {
    ids: Arc<StringIds>,
    signature: Signature,
}

/// `frameline_string_of(Int32) -> Utf8`.
#[derive(Debug)]
struct StringOfId {
    ids: Arc<StringIds>,
    signature: Signature,
}

impl StringIdOf {
    fn new(ids: Arc<StringIds>) -> Self {
        StringIdOf {
            ids,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl StringOfId {
    fn new(ids: Arc<StringIds>) -> Self {
        StringOfId {
            ids,
            signature: Signature::exact(vec![DataType::Int32], Volatility::Immutable),
        }
    }
}

// One query's pair of functions equals itself only: two tables never mix ids.
macro_rules! identity_by_table {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.ids, &other.ids)
            }
        }
        impl Eq for $t {}
        impl Hash for $t {
            fn hash<H: Hasher>(&self, state: &mut H) {
                (Arc::as_ptr(&self.ids) as usize).hash(state);
            }
        }
    };
}
identity_by_table!(StringIdOf);
identity_by_table!(StringOfId);

/// The ids of a dictionary's rows: its values interned once, then one gather per row.
fn ids_of_dictionary(
    ids: &StringIds,
    dictionary: &DictionaryArray<Int32Type>,
) -> DfResult<ArrayRef> {
    let values = cast(dictionary.values(), &DataType::Utf8)?;
    let value_ids = ids.ids_of(values.as_string::<i32>())?;
    let keys = dictionary.keys();
    // A valid dictionary's keys index its values; -1 (no string) is never produced by one.
    let id_of = |k: i32| {
        usize::try_from(k)
            .ok()
            .and_then(|k| value_ids.get(k))
            .copied()
    };
    let out = if keys.null_count() == 0 {
        // The common case, without a validity bitmap: one gather per row.
        let ids: Vec<i32> = keys
            .values()
            .iter()
            .map(|&k| id_of(k).unwrap_or(-1))
            .collect();
        Int32Array::from(ids)
    } else {
        keys.iter().map(|k| k.and_then(id_of)).collect()
    };
    Ok(Arc::new(out))
}

impl ScalarUDFImpl for StringIdOf {
    fn name(&self) -> &str {
        "frameline_string_id"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("frameline_string_id takes one argument");
        };
        let array = arg.to_array(args.number_rows)?;
        let dictionary = match array.data_type() {
            DataType::Dictionary(key, _) if **key == DataType::Int32 => {
                array.as_dictionary::<Int32Type>().clone()
            }
            // Any other string column: as a dictionary first (rare: the rule only picks
            // dictionaries).
            _ => {
                let wanted =
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                cast(&array, &wanted)?.as_dictionary::<Int32Type>().clone()
            }
        };
        Ok(ColumnarValue::Array(ids_of_dictionary(
            &self.ids,
            &dictionary,
        )?))
    }
}

impl ScalarUDFImpl for StringOfId {
    fn name(&self) -> &str {
        "frameline_string_of"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("frameline_string_of takes one argument");
        };
        let array = arg.to_array(args.number_rows)?;
        let Some(ids) = array.as_any().downcast_ref::<Int32Array>() else {
            return exec_err!("frameline_string_of takes Int32 ids");
        };
        Ok(ColumnarValue::Array(Arc::new(self.ids.strings_of(ids))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_string_has_the_same_id_across_dictionaries() {
        let ids = StringIds::default();
        let a: DictionaryArray<Int32Type> = vec!["x", "y", "x"].into_iter().collect();
        let b: DictionaryArray<Int32Type> = vec!["y", "z", "y", "x"].into_iter().collect();
        let ia = ids_of_dictionary(&ids, &a).unwrap();
        let ib = ids_of_dictionary(&ids, &b).unwrap();
        let ia = ia.as_any().downcast_ref::<Int32Array>().unwrap();
        let ib = ib.as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(ia.values().to_vec(), [0, 1, 0]);
        assert_eq!(ib.values().to_vec(), [1, 2, 1, 0]);
        let back = ids.strings_of(&Int32Array::from(vec![Some(2), None, Some(0), Some(99)]));
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            [Some("z"), None, Some("x"), None]
        );
    }
}
