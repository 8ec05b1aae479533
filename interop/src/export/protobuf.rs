//! A minimal protobuf writer (the encoding half of proto3's wire format): varints, 64-bit
//! fixed values and length-delimited fields. Enough for Perfetto's trace messages; the field
//! numbers live with the messages in `perfetto.rs`.

const WIRE_VARINT: u32 = 0;
const WIRE_FIXED64: u32 = 1;
const WIRE_LEN: u32 = 2;

/// One message being written. Nested messages are written into their own `Message` first and
/// appended with [`Message::message`] (their length must be known before their bytes).
#[derive(Clone, Debug, Default)]
pub struct Message {
    bytes: Vec<u8>,
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

impl Message {
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, field: u32, wire: u32) {
        put_varint(&mut self.bytes, ((field as u64) << 3) | wire as u64);
    }

    /// `uint32`, `uint64`, enums.
    pub fn uint(&mut self, field: u32, value: u64) -> &mut Self {
        self.key(field, WIRE_VARINT);
        put_varint(&mut self.bytes, value);
        self
    }

    /// `int32`, `int64`: negative values take ten bytes (two's complement), as protobuf says.
    pub fn int(&mut self, field: u32, value: i64) -> &mut Self {
        self.uint(field, value as u64)
    }

    /// `double`.
    pub fn double(&mut self, field: u32, value: f64) -> &mut Self {
        self.key(field, WIRE_FIXED64);
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn bytes(&mut self, field: u32, value: &[u8]) -> &mut Self {
        self.key(field, WIRE_LEN);
        put_varint(&mut self.bytes, value.len() as u64);
        self.bytes.extend_from_slice(value);
        self
    }

    pub fn string(&mut self, field: u32, value: &str) -> &mut Self {
        self.bytes(field, value.as_bytes())
    }

    pub fn message(&mut self, field: u32, value: &Message) -> &mut Self {
        self.bytes(field, &value.bytes)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_matches_the_protobuf_encoding_guide() {
        // The guide's examples: field 1 = 150 is 08 96 01; field 2 = "testing" is 12 07 74 65
        // 73 74 69 6e 67; an embedded message field 3 = {1: 150} is 1a 03 08 96 01.
        let mut m = Message::new();
        m.uint(1, 150);
        assert_eq!(m.clone().into_bytes(), [0x08, 0x96, 0x01]);
        let mut s = Message::new();
        s.string(2, "testing");
        assert_eq!(
            s.into_bytes(),
            [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]
        );
        let mut outer = Message::new();
        outer.message(3, &m);
        assert_eq!(outer.into_bytes(), [0x1a, 0x03, 0x08, 0x96, 0x01]);
        // int64 -1: ten bytes; double 1.0: fixed64 little endian.
        let mut n = Message::new();
        n.int(1, -1);
        assert_eq!(
            n.into_bytes(),
            [
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]
        );
        let mut d = Message::new();
        d.double(44, 1.0);
        assert_eq!(d.into_bytes(), [0xe1, 0x02, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
        // A field number above 15 takes a two-byte key: field 60, wire type 2 is e2 03.
        let mut k = Message::new();
        k.bytes(60, &[]);
        assert_eq!(k.into_bytes(), [0xe2, 0x03, 0x00]);
    }
}
