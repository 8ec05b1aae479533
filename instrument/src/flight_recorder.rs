//! The flight recorder: tail sampling of CPU blocks.
//!
//! With a flight recorder, the flush thread still encodes every CPU block (so each block's
//! open-spans column stays right and any block decodes on its own), but keeps it in a bounded
//! in-memory ring instead of writing it. A trigger opens a time window around itself:
//! - a frame (two consecutive markers of one frame set on one thread) longer than a threshold:
//!   the window runs from `before` ahead of the frame's begin to `after` past its end;
//! - an error-level log entry, or [`capture_now`]: from `before` ahead of it to `after` past it.
//!
//! Held blocks that overlap a window are written at once, and so is every later block that
//! overlaps it. Blocks that leave the ring unwritten (it is full, they are too old for any
//! trigger to want them, or the session ends) are *sampled out*: counted per stream and per
//! process, apart from blocks *dropped* (lost). Logs, metrics and frame markers are always
//! written.

use std::collections::VecDeque;
use std::time::Duration;

/// Settings of the flight recorder ([`crate::Config::flight_recorder`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlightRecorder {
    pub(crate) frame_threshold: Duration,
    pub(crate) before: Duration,
    pub(crate) after: Duration,
    pub(crate) ring_bytes: usize,
    pub(crate) on_error_log: bool,
}

impl Default for FlightRecorder {
    /// Frames over 33.4 ms (twice a 60 fps target), 2 s before and 0.5 s after a trigger, a
    /// 16 MiB ring, error logs trigger.
    fn default() -> Self {
        Self {
            frame_threshold: Duration::from_micros(33_400),
            before: Duration::from_secs(2),
            after: Duration::from_millis(500),
            ring_bytes: 16 * 1024 * 1024,
            on_error_log: true,
        }
    }
}

impl FlightRecorder {
    /// A frame longer than this triggers a capture.
    pub fn frame_threshold(mut self, threshold: Duration) -> Self {
        self.frame_threshold = threshold;
        self
    }

    /// How much is kept before and after a trigger.
    pub fn window(mut self, before: Duration, after: Duration) -> Self {
        self.before = before;
        self.after = after;
        self
    }

    /// Most encoded CPU bytes held in memory (at least one block is always held).
    pub fn ring_bytes(mut self, bytes: usize) -> Self {
        self.ring_bytes = bytes;
        self
    }

    /// Whether an error-level log entry triggers a capture (default `true`).
    pub fn trigger_on_error_logs(mut self, on: bool) -> Self {
        self.on_error_log = on;
        self
    }
}

/// Asks the flight recorder to keep the window around now (from `before` ago to `after` from
/// now). Does nothing without a session or without a flight recorder.
pub fn capture_now() {
    crate::session::request_capture(crate::time::now());
}

/// An encoded CPU block waiting in the ring.
pub(crate) struct HeldBlock<T> {
    pub(crate) begin_ticks: u64,
    pub(crate) end_ticks: u64,
    pub(crate) size_bytes: usize,
    /// What the flush thread needs to write it (stream, key, bytes).
    pub(crate) payload: T,
}

/// What happened to blocks when one was offered or a trigger fired.
pub(crate) struct Outcome<T> {
    /// To write now.
    pub(crate) ship: Vec<T>,
    /// Left the ring unwritten.
    pub(crate) sampled_out: Vec<T>,
}

impl<T> Default for Outcome<T> {
    fn default() -> Self {
        Self {
            ship: Vec::new(),
            sampled_out: Vec::new(),
        }
    }
}

/// The flush thread's ring of held CPU blocks and its open windows, all in ticks.
pub(crate) struct Ring<T> {
    threshold_ticks: u64,
    before_ticks: u64,
    after_ticks: u64,
    /// A block ending this long before the newest one can no longer be in a trigger's window
    /// (`before` plus how late a trigger may reach the flush thread).
    keep_ticks: u64,
    ring_bytes: usize,
    on_error_log: bool,
    held: VecDeque<HeldBlock<T>>,
    held_bytes: usize,
    /// Windows `[start, end]`, sorted and disjoint.
    windows: Vec<(u64, u64)>,
    newest_end_ticks: u64,
    /// Last marker of each (stream, frame call site).
    last_frames: std::collections::HashMap<([u8; 16], u64), u64>,
}

fn to_ticks(duration: Duration, frequency: u64) -> u64 {
    (duration.as_secs_f64() * frequency as f64) as u64
}

impl<T> Ring<T> {
    /// A ring for a clock of `frequency` ticks per second; triggers may reach the flush thread
    /// up to `trigger_lag` after they happen (its flush interval).
    pub(crate) fn new(config: &FlightRecorder, frequency: u64, trigger_lag: Duration) -> Self {
        Self {
            threshold_ticks: to_ticks(config.frame_threshold, frequency),
            before_ticks: to_ticks(config.before, frequency),
            after_ticks: to_ticks(config.after, frequency),
            keep_ticks: to_ticks(
                config.before + trigger_lag * 2 + Duration::from_secs(1),
                frequency,
            ),
            ring_bytes: config.ring_bytes,
            on_error_log: config.on_error_log,
            held: VecDeque::new(),
            held_bytes: 0,
            windows: Vec::new(),
            newest_end_ticks: 0,
            last_frames: std::collections::HashMap::new(),
        }
    }

    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    fn in_window(&self, begin_ticks: u64, end_ticks: u64) -> bool {
        self.windows
            .iter()
            .any(|&(start, end)| begin_ticks <= end && end_ticks >= start)
    }

    /// A CPU block was encoded: written now if a window covers it, held otherwise (the oldest
    /// held blocks leaving the ring as needed).
    pub(crate) fn offer(&mut self, block: HeldBlock<T>) -> Outcome<T> {
        let mut outcome = Outcome::default();
        self.newest_end_ticks = self.newest_end_ticks.max(block.end_ticks);
        if self.in_window(block.begin_ticks, block.end_ticks) {
            outcome.ship.push(block.payload);
        } else {
            self.held_bytes += block.size_bytes;
            self.held.push_back(block);
        }
        let horizon = self.newest_end_ticks.saturating_sub(self.keep_ticks);
        while let Some(oldest) = self.held.front() {
            let too_big = self.held_bytes > self.ring_bytes && self.held.len() > 1;
            if !too_big && oldest.end_ticks >= horizon {
                break;
            }
            if let Some(evicted) = self.held.pop_front() {
                self.held_bytes -= evicted.size_bytes;
                outcome.sampled_out.push(evicted.payload);
            }
        }
        // Windows that ended before the horizon cover nothing still held or still to come.
        self.windows.retain(|&(_, end)| end >= horizon);
        outcome
    }

    /// Keeps `[start, end]`: returns the held blocks it covers, to write now.
    pub(crate) fn trigger(&mut self, start: u64, end: u64) -> Vec<T> {
        let position = self.windows.partition_point(|&(s, _)| s < start);
        self.windows.insert(position, (start, end));
        // Merge overlapping windows.
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.windows.len());
        for &(s, e) in &self.windows {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.windows = merged;
        let mut ship = Vec::new();
        let mut kept = VecDeque::with_capacity(self.held.len());
        for block in self.held.drain(..) {
            if block.begin_ticks <= end && block.end_ticks >= start {
                self.held_bytes -= block.size_bytes;
                ship.push(block.payload);
            } else {
                kept.push_back(block);
            }
        }
        self.held = kept;
        ship
    }

    /// A trigger at `ticks` (a `capture_now` or an error log).
    pub(crate) fn trigger_at(&mut self, ticks: u64) -> Vec<T> {
        self.trigger(
            ticks.saturating_sub(self.before_ticks),
            ticks.saturating_add(self.after_ticks),
        )
    }

    /// Error-level log entries at `ticks`: triggers, unless error logs do not trigger.
    pub(crate) fn error_logs(&mut self, ticks: &[u64]) -> Vec<T> {
        if !self.on_error_log {
            return Vec::new();
        }
        ticks.iter().flat_map(|&t| self.trigger_at(t)).collect()
    }

    /// Frame markers `(call site, ticks)` of one stream, in order: a frame longer than the
    /// threshold triggers, its whole length inside the window.
    pub(crate) fn frame_markers(&mut self, stream_id: [u8; 16], markers: &[(u64, u64)]) -> Vec<T> {
        let mut ship = Vec::new();
        for &(site, ticks) in markers {
            let previous = self.last_frames.insert((stream_id, site), ticks);
            if let Some(begin) = previous
                && ticks.saturating_sub(begin) > self.threshold_ticks
            {
                ship.extend(self.trigger(
                    begin.saturating_sub(self.before_ticks),
                    ticks.saturating_add(self.after_ticks),
                ));
            }
        }
        ship
    }

    /// At shutdown: every block still held, never written.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.held_bytes = 0;
        self.held.drain(..).map(|b| b.payload).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One tick per nanosecond: windows in ms read easily.
    const FREQ: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn ring(ring_bytes: usize) -> Ring<u32> {
        let config = FlightRecorder::default()
            .frame_threshold(Duration::from_millis(30))
            .window(Duration::from_millis(100), Duration::from_millis(50))
            .ring_bytes(ring_bytes);
        Ring::new(&config, FREQ, Duration::from_millis(10))
    }

    fn block(id: u32, begin_ms: u64, end_ms: u64) -> HeldBlock<u32> {
        HeldBlock {
            begin_ticks: begin_ms * MS,
            end_ticks: end_ms * MS,
            size_bytes: 10,
            payload: id,
        }
    }

    #[test]
    fn blocks_are_held_until_a_trigger_covers_them() {
        let mut ring = ring(1000);
        for i in 0..10u32 {
            let outcome = ring.offer(block(i, 1000 + 20 * i as u64, 1020 + 20 * i as u64));
            assert!(outcome.ship.is_empty() && outcome.sampled_out.is_empty());
        }
        assert_eq!(ring.held_bytes(), 100);
        // A trigger at 1150 ms keeps 1050..1200 ms: blocks 2..=9 (block 2 ends at 1060).
        let mut shipped = ring.trigger_at(1150 * MS);
        shipped.sort();
        assert_eq!(shipped, vec![2, 3, 4, 5, 6, 7, 8, 9]);
        // A later block inside the window is written at once, one past it is held.
        assert_eq!(ring.offer(block(10, 1200, 1220)).ship, vec![10]);
        assert!(ring.offer(block(11, 1210, 1230)).ship.is_empty());
        assert!(ring.offer(block(12, 1300, 1320)).ship.is_empty());
        let mut rest = ring.drain();
        rest.sort();
        assert!(rest.contains(&0) && rest.contains(&1) && rest.contains(&12));
        assert!(!rest.contains(&5));
    }

    #[test]
    fn a_long_frame_keeps_its_whole_length() {
        let mut ring = ring(1000);
        for i in 0..20u32 {
            let _ = ring.offer(block(i, 20 * i as u64, 20 * i as u64 + 20));
        }
        let stream = [7; 16];
        // Frames of 16 ms, then one of 200 ms (from 300 to 500 ms).
        let markers = [(8, 268 * MS), (8, 284 * MS), (8, 300 * MS), (8, 500 * MS)];
        let mut shipped = ring.frame_markers(stream, &markers);
        shipped.sort();
        // 200..550 ms: blocks 9 (180..200) to 19.
        assert_eq!(shipped, (9..20).collect::<Vec<_>>());
        // Markers of another call site or stream do not pair with these.
        assert!(ring.frame_markers([8; 16], &[(8, 900 * MS)]).is_empty());
    }

    #[test]
    fn the_ring_stays_within_its_bytes_and_counts_what_leaves() {
        let mut ring = ring(50);
        let mut sampled_out = Vec::new();
        for i in 0..100u32 {
            let outcome = ring.offer(block(i, i as u64, i as u64 + 1));
            sampled_out.extend(outcome.sampled_out);
            assert!(ring.held_bytes() <= 50);
        }
        let held = ring.drain();
        assert_eq!(sampled_out.len() + held.len(), 100);
        assert_eq!(held, (95..100).collect::<Vec<_>>());
    }

    #[test]
    fn old_blocks_leave_the_ring_by_time() {
        // keep = 100 ms before + 2 × 10 ms lag + 1 s.
        let mut ring = ring(1 << 20);
        assert!(ring.offer(block(0, 0, 10)).sampled_out.is_empty());
        let outcome = ring.offer(block(1, 2000, 2010));
        assert_eq!(outcome.sampled_out, vec![0]);
    }

    #[test]
    fn error_logs_trigger_only_when_enabled() {
        let mut ring = ring(1000);
        let _ = ring.offer(block(0, 0, 10));
        assert_eq!(ring.error_logs(&[5 * MS]), vec![0]);
        let config = FlightRecorder::default().trigger_on_error_logs(false);
        let mut quiet: Ring<u32> = Ring::new(&config, FREQ, Duration::from_millis(10));
        let _ = quiet.offer(block(0, 0, 10));
        assert!(quiet.error_logs(&[5 * MS]).is_empty());
    }
}
