//! Block keys: parsing any text never panics, a parsed key prints to a key that parses to the
//! same fields, and any key printed from fields (ids without `/`) parses back to them.
#![no_main]

use frameline_instrument::format::StreamKind;
use frameline_instrument::lake::BlockKey;
use libfuzzer_sys::fuzz_target;

fn i64_at(data: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = data.get(at + i).copied().unwrap_or(0);
    }
    i64::from_le_bytes(bytes)
}

fuzz_target!(|data: &[u8]| {
    // Any text as a key.
    let text = String::from_utf8_lossy(data);
    if let Some(key) = BlockKey::parse(&text) {
        let printed = key.to_key();
        assert_eq!(BlockKey::parse(&printed).as_ref(), Some(&key), "{printed}");
    }
    // Fields from the bytes: kind, five numbers, then the two ids split at a 0 byte.
    if data.len() < 41 {
        return;
    }
    let kind = StreamKind::ALL[usize::from(data[0] % 3)];
    let ids = String::from_utf8_lossy(&data[41..]).replace('/', "");
    let (process_id, stream_id) = ids.split_once('\0').unwrap_or((&ids, ""));
    let key = BlockKey {
        process_id: process_id.to_owned(),
        kind,
        stream_id: stream_id.to_owned(),
        block_seq: i64_at(data, 1) as u64,
        begin_unix_ns: i64_at(data, 9),
        end_unix_ns: i64_at(data, 17),
        event_count: i64_at(data, 25) as u32,
        earliest_unix_ns: i64_at(data, 33),
    };
    let printed = key.to_key();
    assert!(printed.starts_with("blocks/") && printed.ends_with(".blk"));
    assert_eq!(BlockKey::parse(&printed).as_ref(), Some(&key), "{printed}");
});
