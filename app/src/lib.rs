//! The `frameline` application: the viewer (egui/wgpu) and the demo game, as a library so tests
//! can drive them (egui_kittest) and the binary stays a thin command line. Export and import are
//! in the `frameline-interop` crate; `interop_cli` is their command line.

#![deny(unsafe_code)]
pub mod compare_cli;
pub mod compare_render;
pub mod demo;
mod demo_slowdown;
pub mod interop_cli;
pub mod lake_cli;
pub mod viewer;
