// Instanced rectangles for the timeline: one instance per span or folded mark.
struct Globals {
    screen_size_points: vec2<f32>,
    _pad: vec2<f32>,
};
@group(0) @binding(0) var<uniform> globals: Globals;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) color: vec4<f32>,
};

@vertex
fn vs_main(
    @builtin(vertex_index) vertex_index: u32,
    @location(0) rect: vec4<f32>,   // min.x, min.y, max.x, max.y in egui points
    @location(1) color: vec4<f32>,  // premultiplied RGBA
) -> VsOut {
    let corner = vec2<f32>(f32(vertex_index & 1u), f32(vertex_index >> 1u));
    let p = mix(rect.xy, rect.zw, corner);
    var out: VsOut;
    out.position = vec4<f32>(
        2.0 * p.x / globals.screen_size_points.x - 1.0,
        1.0 - 2.0 * p.y / globals.screen_size_points.y,
        0.0,
        1.0,
    );
    out.color = color;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    return in.color;
}
