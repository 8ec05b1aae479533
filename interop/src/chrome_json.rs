//! A tolerant reader of Chrome's JSON trace files: it hands out the events of the bare array or
//! of the `{"traceEvents": [...]}` object one at a time, parsed from the one input buffer (the
//! whole file is never held twice, nor parsed into one tree), and says where and how the file
//! ended.
//!
//! It takes what Chrome's trace viewer and Perfetto take: a file cut off mid-write (no closing
//! bracket, a trailing comma, an event cut in the middle: what came before the cut is kept and
//! the cut's byte offset reported), extra commas between events, other top-level keys in any
//! order (skipped; `otherData` read for frameline's own time origin), and bytes after the end of
//! the trace (ignored). Anything else that is not JSON is refused with the byte offset where
//! reading stopped.

use crate::InteropError;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

type Result<T> = std::result::Result<T, InteropError>;

/// Where the file ends, as far as the trace is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The trace is complete; `trailing_bytes` of something other than whitespace after it
    /// were ignored.
    Complete { trailing_bytes: usize },
    /// The file stops before the trace does, at byte `offset`: inside an event (that event is
    /// lost; `offset` is where it starts), or between events / after the last one without the
    /// closing bracket (nothing is lost; `offset` is the file's length).
    Cut { offset: usize, inside_event: bool },
}

/// What a scan found besides the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scanned {
    /// `otherData.frameline_origin_unix_ns` (frameline's own exports), or 0.
    pub origin_ns: i64,
    pub ending: Ending,
}

/// One JSON value at `pos`: `Ok(Some((value, end)))`, `Ok(None)` if the input ends inside it,
/// or the refusal naming the offset of the error.
fn value_at<T: DeserializeOwned>(bytes: &[u8], pos: usize) -> Result<Option<(T, usize)>> {
    let rest = bytes.get(pos..).unwrap_or_default();
    let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<T>();
    match stream.next() {
        Some(Ok(value)) => Ok(Some((value, pos + stream.byte_offset()))),
        None => Ok(None),
        Some(Err(error)) if error.is_eof() => Ok(None),
        Some(Err(error)) => {
            // serde_json's position is relative to `pos`: the offset replaces it.
            let detail = error.to_string();
            let detail = match detail.rsplit_once(" at line ") {
                Some((what, _)) => what.to_owned(),
                None => detail,
            };
            Err(InteropError::NotJson {
                offset: pos + offset_of(rest, error.line(), error.column()),
                detail,
            })
        }
    }
}

/// The byte offset in `bytes` of serde_json's (1-based line, column).
fn offset_of(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut line_start = 0;
    for _ in 1..line {
        match bytes
            .get(line_start..)
            .and_then(|b| b.iter().position(|&c| c == b'\n'))
        {
            Some(newline) => line_start += newline + 1,
            None => break,
        }
    }
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(u8::is_ascii_whitespace) {
        pos += 1;
    }
    pos
}

fn trailing(bytes: &[u8], pos: usize) -> Ending {
    let rest = bytes.get(pos..).unwrap_or_default();
    Ending::Complete {
        trailing_bytes: rest.iter().filter(|c| !c.is_ascii_whitespace()).count(),
    }
}

/// Calls `on_event` with each element of the event array, in file order, and returns how the
/// file ended.
pub fn scan(bytes: &[u8], mut on_event: impl FnMut(Value)) -> Result<Scanned> {
    let start = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let pos = skip_whitespace(bytes, start);
    match bytes.get(pos) {
        Some(b'[') => {
            let ending = events(bytes, pos + 1, &mut on_event)?;
            let ending = match ending {
                ArrayEnd::Closed(end) => trailing(bytes, end),
                ArrayEnd::Cut(ending) => ending,
            };
            Ok(Scanned {
                origin_ns: 0,
                ending,
            })
        }
        Some(b'{') => object(bytes, pos + 1, &mut on_event),
        None => Err(InteropError::NotChromeTrace {
            offset: pos,
            reason: "the file is empty",
        }),
        Some(_) => {
            // Valid JSON of another kind is "not a trace"; anything else "not JSON".
            value_at::<IgnoredAny>(bytes, pos)?;
            Err(InteropError::NotChromeTrace {
                offset: pos,
                reason: "neither an array of events nor an object",
            })
        }
    }
}

enum ArrayEnd {
    /// The closing `]`, and the offset after it.
    Closed(usize),
    Cut(Ending),
}

/// The elements of an array whose `[` is just before `pos`. Commas between elements are
/// optional and may repeat (as Perfetto reads them).
fn events(bytes: &[u8], mut pos: usize, on_event: &mut impl FnMut(Value)) -> Result<ArrayEnd> {
    loop {
        pos = skip_whitespace(bytes, pos);
        match bytes.get(pos) {
            None => {
                return Ok(ArrayEnd::Cut(Ending::Cut {
                    offset: bytes.len(),
                    inside_event: false,
                }));
            }
            Some(b']') => return Ok(ArrayEnd::Closed(pos + 1)),
            Some(b',') => pos += 1,
            Some(_) => match value_at::<Value>(bytes, pos)? {
                Some((event, end)) => {
                    on_event(event);
                    pos = end;
                }
                None => {
                    return Ok(ArrayEnd::Cut(Ending::Cut {
                        offset: pos,
                        inside_event: true,
                    }));
                }
            },
        }
    }
}

/// The top-level object, whose `{` is just before `pos`: its `traceEvents` array streamed, its
/// `otherData` read, its other keys skipped.
fn object(bytes: &[u8], mut pos: usize, on_event: &mut impl FnMut(Value)) -> Result<Scanned> {
    let mut origin_ns = 0;
    let mut saw_events = false;
    let cut = |offset: usize, saw_events: bool, origin_ns: i64| {
        if saw_events {
            Ok(Scanned {
                origin_ns,
                ending: Ending::Cut {
                    offset,
                    inside_event: false,
                },
            })
        } else {
            Err(InteropError::NotChromeTrace {
                offset,
                reason: "the file ends before a traceEvents array",
            })
        }
    };
    loop {
        pos = skip_whitespace(bytes, pos);
        match bytes.get(pos) {
            None => return cut(pos, saw_events, origin_ns),
            Some(b'}') if saw_events => {
                return Ok(Scanned {
                    origin_ns,
                    ending: trailing(bytes, pos + 1),
                });
            }
            Some(b'}') => {
                return Err(InteropError::NotChromeTrace {
                    offset: pos,
                    reason: "an object without a traceEvents array",
                });
            }
            Some(b',') => {
                pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let key_at = pos;
        let Some((key, end)) = value_at::<Value>(bytes, pos)? else {
            return cut(key_at, saw_events, origin_ns);
        };
        let Value::String(key) = key else {
            return Err(InteropError::NotJson {
                offset: key_at,
                detail: "expected a key (a string) in the top-level object".to_owned(),
            });
        };
        pos = skip_whitespace(bytes, end);
        match bytes.get(pos) {
            None => return cut(pos, saw_events, origin_ns),
            Some(b':') => pos = skip_whitespace(bytes, pos + 1),
            Some(_) => {
                return Err(InteropError::NotJson {
                    offset: pos,
                    detail: format!("expected ':' after the key \"{}\"", key.escape_debug()),
                });
            }
        }
        if key == "traceEvents" && !saw_events && bytes.get(pos) == Some(&b'[') {
            saw_events = true;
            match events(bytes, pos + 1, on_event)? {
                ArrayEnd::Closed(end) => pos = end,
                ArrayEnd::Cut(ending) => return Ok(Scanned { origin_ns, ending }),
            }
        } else if key == "otherData" {
            let Some((other, end)) = value_at::<Value>(bytes, pos)? else {
                return cut(bytes.len(), saw_events, origin_ns);
            };
            origin_ns = other
                .get("frameline_origin_unix_ns")
                .and_then(|o| match o {
                    Value::String(s) => s.parse().ok(),
                    other => other.as_i64(),
                })
                .unwrap_or(0);
            pos = end;
        } else {
            // displayTimeUnit, metadata, systemTraceEvents, …: skipped (displayTimeUnit only
            // changes how viewers display times; ts and dur stay microseconds).
            let Some((IgnoredAny, end)) = value_at::<IgnoredAny>(bytes, pos)? else {
                return cut(bytes.len(), saw_events, origin_ns);
            };
            pos = end;
        }
    }
}
