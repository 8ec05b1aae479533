//! Cpu blocks from raw bytes: `decode_spans_block` returns span rows or an error, never panics
//! or aborts, within FORMAT.md §2.5's bounds; a row (an end, or a span open at the block's start)
//! takes at least 2 bytes of body; unclosed spans only in a stream's last block; a span at depth
//! 0 has no parent.
#![no_main]

use frameline_engine::datafusion::arrow::array::{AsArray, BooleanArray};
use frameline_engine::datafusion::arrow::datatypes::{UInt32Type, UInt64Type};
use frameline_engine::decode::{self, MIN_CPU_EVENT_BYTES, decoded_bytes, max_decoded_bytes};
use frameline_fuzz::{FuzzBlock, ids_bytes, peak_heap};
use frameline_instrument::format::StreamKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(block) = FuzzBlock::from_input(StreamKind::Cpu, data) else {
        return;
    };
    let entry = block.entry(StreamKind::Cpu);
    let ctx = block.context(&entry);
    let bound = block.heap_bound(ids_bytes(&ctx));
    let body = block.body_bytes();
    let (decoded, peak) = peak_heap(|| decode::decode_spans_block(&block.bytes, &ctx));
    assert!(peak <= bound, "peak heap {peak} > bound {bound}");
    if let Ok((batch, _orphan_ends)) = decoded {
        let body = body.expect("a decoded block has a valid envelope");
        let limit = max_decoded_bytes(body) + ids_bytes(&ctx);
        assert!(
            decoded_bytes(&batch) <= limit,
            "{} > {limit}",
            decoded_bytes(&batch)
        );
        assert!(batch.num_rows() <= body / MIN_CPU_EVENT_BYTES);
        let unclosed = batch
            .column_by_name("unclosed")
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
            .expect("an unclosed column");
        if !block.last_of_stream {
            assert_eq!(unclosed.true_count(), 0);
        }
        let depth = batch.column_by_name("depth").expect("depth");
        let parent = batch.column_by_name("parent_id").expect("parent_id");
        let (depth, parent) = (
            depth.as_primitive::<UInt32Type>(),
            parent.as_primitive::<UInt64Type>(),
        );
        for row in 0..batch.num_rows() {
            if depth.value(row) == 0 {
                assert_eq!(parent.value(row), 0);
            }
        }
    }
});
