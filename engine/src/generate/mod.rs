//! Synthetic lakes of real blocks, written through the instrument's offline writer: a studio's
//! fleet of short sessions (`fleet`), and one long session of any length (`long`).

mod fleet;
mod long;

pub use fleet::{
    BUILDS, FleetOptions, MAPS, PLATFORMS, now_unix_ns, session_properties, write_fleet,
};
pub use long::{LongSessionOptions, LongSessionReport, STALL_NS, write_long_session};
