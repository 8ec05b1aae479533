//! One batch's partial aggregates by dictionary key: vectors indexed by key (the null key has the
//! last slot), one pass over the keys per argument column, and one output row per key present.

use datafusion::arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, PrimitiveArray, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int32Type, Int64Type, SchemaRef, UInt64Type,
};
use datafusion::common::{Result as DfResult, exec_err};
use std::borrow::Cow;
use std::sync::Arc;

/// What one partial column accumulates per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartialKind {
    /// The key's rows (`count(*)`): `Int64`.
    Rows,
    /// The argument's non-null values (`count(x)`, and `avg(x)`'s divisor): `Int64`.
    Count,
    /// The argument's sum in `sum(x)`'s type: `Int64` (wrapping), `UInt64` (wrapping) or
    /// `Float64`; null where the key has no value.
    Sum,
    /// The argument's sum as `f64` (`avg(x)`'s dividend, summed as DataFusion's `avg` does):
    /// `Float64`; null where the key has no value.
    SumF64,
    /// The argument's minimum, widened: `Int64` or `UInt64`; null where the key has no value.
    Min,
    /// The argument's maximum, like [`PartialKind::Min`].
    Max,
}

/// The kinds of number an argument can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberClass {
    Signed,
    Unsigned,
    Float,
}

impl NumberClass {
    /// The class of a column type, if it is a number this module aggregates.
    pub fn of(data_type: &DataType) -> Option<NumberClass> {
        match data_type {
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                Some(NumberClass::Signed)
            }
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                Some(NumberClass::Unsigned)
            }
            DataType::Float32 | DataType::Float64 => Some(NumberClass::Float),
            _ => None,
        }
    }

    /// The widest type of the class, which arguments are cast to before accumulating.
    pub fn wide_type(self) -> DataType {
        match self {
            NumberClass::Signed => DataType::Int64,
            NumberClass::Unsigned => DataType::UInt64,
            NumberClass::Float => DataType::Float64,
        }
    }
}

impl PartialKind {
    /// The partial column's type for an argument of type `argument` (`None`: no argument), or
    /// `None` if this kind does not take such an argument.
    pub fn output_type(self, argument: Option<&DataType>) -> Option<DataType> {
        match self {
            PartialKind::Rows => argument.is_none().then_some(DataType::Int64),
            PartialKind::Count => argument.map(|_| DataType::Int64),
            PartialKind::SumF64 => NumberClass::of(argument?).map(|_| DataType::Float64),
            PartialKind::Sum => NumberClass::of(argument?).map(NumberClass::wide_type),
            PartialKind::Min | PartialKind::Max => match NumberClass::of(argument?)? {
                NumberClass::Float => None,
                class => Some(class.wide_type()),
            },
        }
    }
}

/// One partial column to compute: its kind and its argument (`None` for [`PartialKind::Rows`]).
pub struct PartialInput<'a> {
    pub kind: PartialKind,
    pub argument: Option<&'a ArrayRef>,
}

/// The slot of each row: its key, or the null slot (`slot_count - 1`) where the key is null.
fn slots_of(keys: &PrimitiveArray<Int32Type>, null_slot: i32) -> Cow<'_, [i32]> {
    match keys.nulls() {
        None => Cow::Borrowed(keys.values().as_ref()),
        Some(nulls) => Cow::Owned(
            keys.values()
                .iter()
                .enumerate()
                .map(|(row, &key)| if nulls.is_valid(row) { key } else { null_slot })
                .collect(),
        ),
    }
}

/// Folds `values` into one accumulator per slot, and counts each slot's non-null values. A key
/// out of range (which a valid dictionary array cannot hold) is not counted.
fn fold_slots<T: ArrowPrimitiveType, A: Copy>(
    slots: &[i32],
    values: &PrimitiveArray<T>,
    slot_count: usize,
    init: A,
    fold: impl Fn(A, T::Native) -> A,
) -> (Vec<A>, Vec<i64>) {
    let mut accumulators = vec![init; slot_count];
    let mut counts = vec![0_i64; slot_count];
    let mut add = |slot: i32, value: T::Native| {
        let slot = slot as usize;
        if let (Some(accumulator), Some(count)) = (accumulators.get_mut(slot), counts.get_mut(slot))
        {
            *accumulator = fold(*accumulator, value);
            *count += 1;
        }
    };
    match values.nulls() {
        None => {
            for (&slot, &value) in slots.iter().zip(values.values().iter()) {
                add(slot, value);
            }
        }
        Some(nulls) => {
            for (row, (&slot, &value)) in slots.iter().zip(values.values().iter()).enumerate() {
                if nulls.is_valid(row) {
                    add(slot, value);
                }
            }
        }
    }
    (accumulators, counts)
}

/// The used slots' values, null where a slot had no value.
fn finish<P: ArrowPrimitiveType>(
    used: &[usize],
    accumulators: &[P::Native],
    counts: &[i64],
) -> ArrayRef {
    let array: PrimitiveArray<P> = used
        .iter()
        .map(|&slot| {
            counts
                .get(slot)
                .filter(|&&count| count > 0)
                .and_then(|_| accumulators.get(slot).copied())
        })
        .collect();
    Arc::new(array)
}

/// Counts of the used slots as an `Int64` column.
fn counts_column(used: &[usize], counts: &[i64]) -> ArrayRef {
    let array: PrimitiveArray<Int64Type> = used
        .iter()
        .map(|&slot| Some(counts.get(slot).copied().unwrap_or(0)))
        .collect();
    Arc::new(array)
}

/// One partial column over `slots`.
fn partial_column(
    input: &PartialInput<'_>,
    slots: &[i32],
    slot_count: usize,
    rows: &[i64],
    used: &[usize],
) -> DfResult<ArrayRef> {
    let Some(argument) = input.argument else {
        return match input.kind {
            PartialKind::Rows => Ok(counts_column(used, rows)),
            kind => exec_err!("the partial aggregate {kind:?} needs an argument"),
        };
    };
    if input.kind == PartialKind::Count {
        return Ok(match argument.nulls() {
            None => counts_column(used, rows),
            Some(nulls) => {
                let mut counts = vec![0_i64; slot_count];
                for (row, &slot) in slots.iter().enumerate() {
                    if let Some(count) = counts.get_mut(slot as usize) {
                        *count += i64::from(nulls.is_valid(row));
                    }
                }
                counts_column(used, &counts)
            }
        });
    }
    let Some(class) = NumberClass::of(argument.data_type()) else {
        return exec_err!(
            "the partial aggregate {:?} of a {} column",
            input.kind,
            argument.data_type()
        );
    };
    let wide = cast(argument, &class.wide_type())?;
    Ok(match (input.kind, class) {
        (PartialKind::SumF64, NumberClass::Signed) => {
            let (sums, counts) = fold_slots(
                slots,
                wide.as_primitive::<Int64Type>(),
                slot_count,
                0.0,
                |a, v| a + v as f64,
            );
            finish::<Float64Type>(used, &sums, &counts)
        }
        (PartialKind::SumF64, NumberClass::Unsigned) => {
            let (sums, counts) = fold_slots(
                slots,
                wide.as_primitive::<UInt64Type>(),
                slot_count,
                0.0,
                |a, v| a + v as f64,
            );
            finish::<Float64Type>(used, &sums, &counts)
        }
        (PartialKind::SumF64 | PartialKind::Sum, NumberClass::Float) => {
            let (sums, counts) = fold_slots(
                slots,
                wide.as_primitive::<Float64Type>(),
                slot_count,
                0.0,
                |a, v| a + v,
            );
            finish::<Float64Type>(used, &sums, &counts)
        }
        (PartialKind::Sum, NumberClass::Signed) => {
            let (sums, counts) = fold_slots(
                slots,
                wide.as_primitive::<Int64Type>(),
                slot_count,
                0_i64,
                i64::wrapping_add,
            );
            finish::<Int64Type>(used, &sums, &counts)
        }
        (PartialKind::Sum, NumberClass::Unsigned) => {
            let (sums, counts) = fold_slots(
                slots,
                wide.as_primitive::<UInt64Type>(),
                slot_count,
                0_u64,
                u64::wrapping_add,
            );
            finish::<UInt64Type>(used, &sums, &counts)
        }
        (PartialKind::Min, NumberClass::Signed) => {
            let (mins, counts) = fold_slots(
                slots,
                wide.as_primitive::<Int64Type>(),
                slot_count,
                i64::MAX,
                i64::min,
            );
            finish::<Int64Type>(used, &mins, &counts)
        }
        (PartialKind::Max, NumberClass::Signed) => {
            let (maxs, counts) = fold_slots(
                slots,
                wide.as_primitive::<Int64Type>(),
                slot_count,
                i64::MIN,
                i64::max,
            );
            finish::<Int64Type>(used, &maxs, &counts)
        }
        (PartialKind::Min, NumberClass::Unsigned) => {
            let (mins, counts) = fold_slots(
                slots,
                wide.as_primitive::<UInt64Type>(),
                slot_count,
                u64::MAX,
                u64::min,
            );
            finish::<UInt64Type>(used, &mins, &counts)
        }
        (PartialKind::Max, NumberClass::Unsigned) => {
            let (maxs, counts) = fold_slots(
                slots,
                wide.as_primitive::<UInt64Type>(),
                slot_count,
                u64::MIN,
                u64::max,
            );
            finish::<UInt64Type>(used, &maxs, &counts)
        }
        (kind, class) => return exec_err!("the partial aggregate {kind:?} of {class:?} numbers"),
    })
}

/// Partial aggregates of one batch: a row per key present in `group` (a
/// `Dictionary(Int32, _)` column), its first column the key's value (null for null keys), then
/// one column per input, in `schema`.
pub fn pre_aggregate_batch(
    group: &ArrayRef,
    inputs: &[PartialInput<'_>],
    schema: SchemaRef,
) -> DfResult<RecordBatch> {
    let Some(dictionary) = group.as_dictionary_opt::<Int32Type>() else {
        return exec_err!(
            "pre-aggregation groups a Dictionary(Int32, _) column, not {}",
            group.data_type()
        );
    };
    let values = dictionary.values();
    let Ok(null_slot) = i32::try_from(values.len()) else {
        return exec_err!("a dictionary of {} values", values.len());
    };
    let slot_count = values.len() + 1;
    let slots = slots_of(dictionary.keys(), null_slot);
    let mut rows = vec![0_i64; slot_count];
    for &slot in slots.iter() {
        if let Some(count) = rows.get_mut(slot as usize) {
            *count += 1;
        }
    }
    let used: Vec<usize> = (0..slot_count).filter(|&slot| rows[slot] > 0).collect();
    let indices: UInt32Array = used
        .iter()
        .map(|&slot| {
            u32::try_from(slot)
                .ok()
                .filter(|&slot| slot != null_slot as u32)
        })
        .collect();
    let mut columns = Vec::with_capacity(inputs.len() + 1);
    columns.push(take(values.as_ref(), &indices, None)?);
    for input in inputs {
        columns.push(partial_column(input, &slots, slot_count, &rows, &used)?);
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use datafusion::arrow::array::{
        DictionaryArray, Float64Array, Int32Array, Int64Array, StringArray, UInt64Array,
    };
    use datafusion::arrow::datatypes::{Field, Schema};

    fn schema(types: &[DataType]) -> SchemaRef {
        let mut fields = vec![Field::new("g", DataType::Utf8, true)];
        for (i, data_type) in types.iter().enumerate() {
            fields.push(Field::new(format!("p{i}"), data_type.clone(), true));
        }
        Arc::new(Schema::new(fields))
    }

    /// Keys 0, 1, null, and 2 never used; a value column with a null.
    #[test]
    fn each_key_present_gets_one_row_with_its_partials() {
        let keys = Int32Array::from(vec![Some(0), Some(1), Some(0), None, Some(1), Some(0)]);
        let values = StringArray::from(vec!["a", "b", "unused"]);
        let group: ArrayRef = Arc::new(DictionaryArray::new(keys, Arc::new(values)));
        let x: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(5),
            Some(-7),
            None,
            Some(100),
            Some(3),
            Some(1),
        ]));
        let u: ArrayRef = Arc::new(UInt64Array::from(vec![1_u64, 2, 3, 4, 5, 6]));
        let kinds = [
            (PartialKind::Rows, None),
            (PartialKind::Count, Some(&x)),
            (PartialKind::Sum, Some(&x)),
            (PartialKind::SumF64, Some(&x)),
            (PartialKind::Min, Some(&x)),
            (PartialKind::Max, Some(&x)),
            (PartialKind::Max, Some(&u)),
        ];
        let inputs: Vec<_> = kinds
            .iter()
            .map(|&(kind, argument)| PartialInput { kind, argument })
            .collect();
        let types: Vec<_> = kinds
            .iter()
            .map(|&(kind, argument)| kind.output_type(argument.map(|a| a.data_type())).unwrap())
            .collect();
        let batch = pre_aggregate_batch(&group, &inputs, schema(&types)).unwrap();
        assert_eq!(
            batch.num_rows(),
            3,
            "a, b and null; the unused key has no row"
        );
        let g = batch.column(0).as_string::<i32>();
        assert_eq!(
            (0..3)
                .map(|i| g.is_valid(i).then(|| g.value(i)))
                .collect::<Vec<_>>(),
            [Some("a"), Some("b"), None]
        );
        let i64s = |c: usize| -> Vec<Option<i64>> {
            batch.column(c).as_primitive::<Int64Type>().iter().collect()
        };
        assert_eq!(i64s(1), [Some(3), Some(2), Some(1)], "rows");
        assert_eq!(i64s(2), [Some(2), Some(2), Some(1)], "non-null values");
        assert_eq!(i64s(3), [Some(6), Some(-4), Some(100)], "sums");
        let f: Vec<_> = batch
            .column(4)
            .as_primitive::<Float64Type>()
            .iter()
            .collect();
        assert_eq!(f, [Some(6.0), Some(-4.0), Some(100.0)]);
        assert_eq!(i64s(5), [Some(1), Some(-7), Some(100)], "minimums");
        assert_eq!(i64s(6), [Some(5), Some(3), Some(100)], "maximums");
        let u: Vec<_> = batch
            .column(7)
            .as_primitive::<UInt64Type>()
            .iter()
            .collect();
        assert_eq!(u, [Some(6), Some(5), Some(4)]);
    }

    #[test]
    fn a_key_whose_values_are_all_null_has_null_sums_and_zero_counts() {
        let keys = Int32Array::from(vec![0, 0, 1]);
        let group: ArrayRef = Arc::new(DictionaryArray::new(
            keys,
            Arc::new(StringArray::from(vec!["a", "b"])),
        ));
        let x: ArrayRef = Arc::new(Float64Array::from(vec![None, None, Some(2.5)]));
        let inputs = [
            PartialInput {
                kind: PartialKind::Count,
                argument: Some(&x),
            },
            PartialInput {
                kind: PartialKind::Sum,
                argument: Some(&x),
            },
        ];
        let batch = pre_aggregate_batch(
            &group,
            &inputs,
            schema(&[DataType::Int64, DataType::Float64]),
        )
        .unwrap();
        let counts: Vec<_> = batch.column(1).as_primitive::<Int64Type>().iter().collect();
        assert_eq!(counts, [Some(0), Some(1)]);
        let sums: Vec<_> = batch
            .column(2)
            .as_primitive::<Float64Type>()
            .iter()
            .collect();
        assert_eq!(sums, [None, Some(2.5)]);
    }

    #[test]
    fn a_column_that_is_not_a_dictionary_is_an_error_not_a_panic() {
        let group: ArrayRef = Arc::new(StringArray::from(vec!["a"]));
        assert!(pre_aggregate_batch(&group, &[], schema(&[])).is_err());
        assert_eq!(PartialKind::Min.output_type(Some(&DataType::Float64)), None);
        assert_eq!(PartialKind::Sum.output_type(Some(&DataType::Utf8)), None);
        assert_eq!(PartialKind::Rows.output_type(Some(&DataType::Int64)), None);
    }
}
