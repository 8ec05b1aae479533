//! Log blocks from raw bytes (sealed or not, see `FuzzBlock`): `decode_log_block` returns rows or
//! an error, never panics or aborts; the heap it holds and the arrays it returns stay within
//! FORMAT.md §2.5's multiples of the block; a row takes at least 3 bytes of body.
#![no_main]

use frameline_engine::decode::{self, MIN_LOG_EVENT_BYTES, decoded_bytes, max_decoded_bytes};
use frameline_fuzz::{FuzzBlock, ids_bytes, peak_heap};
use frameline_instrument::format::StreamKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(block) = FuzzBlock::from_input(StreamKind::Log, data) else {
        return;
    };
    let entry = block.entry(StreamKind::Log);
    let ctx = block.context(&entry);
    let bound = block.heap_bound(ids_bytes(&ctx));
    let body = block.body_bytes();
    let (decoded, peak) = peak_heap(|| decode::decode_log_block(&block.bytes, &ctx));
    assert!(peak <= bound, "peak heap {peak} > bound {bound}");
    if let Ok(batch) = decoded {
        let body = body.expect("a decoded block has a valid envelope");
        let limit = max_decoded_bytes(body) + ids_bytes(&ctx);
        assert!(
            decoded_bytes(&batch) <= limit,
            "{} > {limit}",
            decoded_bytes(&batch)
        );
        assert!(batch.num_rows() <= body / MIN_LOG_EVENT_BYTES);
    }
});
