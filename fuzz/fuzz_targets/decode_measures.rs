//! Metrics blocks from raw bytes: `decode_measures_block`, `frame_markers` and `frames_batch`
//! (the block paired with itself, as two blocks of one stream) return rows or an error, never
//! panic or abort, within FORMAT.md §2.5's bounds; a row takes at least 2 bytes of body.
#![no_main]

use frameline_engine::decode::{self, MIN_METRIC_EVENT_BYTES, decoded_bytes, max_decoded_bytes};
use frameline_fuzz::{FuzzBlock, ids_bytes, peak_heap};
use frameline_instrument::format::StreamKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(block) = FuzzBlock::from_input(StreamKind::Metrics, data) else {
        return;
    };
    let entry = block.entry(StreamKind::Metrics);
    let ctx = block.context(&entry);
    let bound = block.heap_bound(ids_bytes(&ctx));
    let body = block.body_bytes();

    let (decoded, peak) = peak_heap(|| decode::decode_measures_block(&block.bytes, &ctx));
    assert!(peak <= bound, "measures: peak heap {peak} > bound {bound}");
    if let Ok(batch) = decoded {
        let body = body.expect("a decoded block has a valid envelope");
        let limit = max_decoded_bytes(body) + ids_bytes(&ctx);
        assert!(
            decoded_bytes(&batch) <= limit,
            "{} > {limit}",
            decoded_bytes(&batch)
        );
        assert!(batch.num_rows() <= body / MIN_METRIC_EVENT_BYTES);
    }

    let (frames, peak) = peak_heap(|| {
        let markers = decode::frame_markers(&block.bytes, &ctx)?;
        let frames = decode::frames_batch(&[markers.clone(), markers.clone()], &ctx)?;
        Ok::<_, frameline_engine::EngineError>((markers, frames))
    });
    // Two copies of the markers and the frames they pair: twice the block's bound.
    assert!(
        peak <= 2 * bound,
        "frames: peak heap {peak} > bound {}",
        2 * bound
    );
    if let Ok((markers, frames)) = frames {
        let body = body.expect("a decoded block has a valid envelope");
        assert!(markers.markers.len() <= body / MIN_METRIC_EVENT_BYTES);
        assert!(markers.names.len() <= markers.markers.len());
        // Consecutive markers of a name pair up: fewer frames than markers over both copies.
        assert!(frames.num_rows() < 2 * markers.markers.len().max(1));
        let limit = 2 * max_decoded_bytes(body) + ids_bytes(&ctx);
        assert!(
            decoded_bytes(&frames) <= limit,
            "{} > {limit}",
            decoded_bytes(&frames)
        );
    }
});
