//! The timeline's wgpu pipeline: one instanced draw of every visible rectangle, through an egui
//! paint callback. Text is drawn by egui on top.

use eframe::egui_wgpu::{self, wgpu};
use std::num::NonZeroU64;
use std::sync::Arc;

/// One rectangle: absolute egui screen coordinates (points) and a premultiplied color.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct QuadInstance {
    pub rect: [f32; 4],
    pub color: [u8; 4],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Globals {
    screen_size_points: [f32; 2],
    _pad: [f32; 2],
}

const INSTANCE_SIZE: wgpu::BufferAddress =
    std::mem::size_of::<QuadInstance>() as wgpu::BufferAddress;
const INSTANCE_ATTRIBUTES: [wgpu::VertexAttribute; 2] =
    wgpu::vertex_attr_array![0 => Float32x4, 1 => Unorm8x4];

/// GPU objects, kept in the egui renderer's callback resources.
pub struct QuadResources {
    pipeline: wgpu::RenderPipeline,
    globals: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    instances: wgpu::Buffer,
    capacity: u64,
    count: u32,
}

fn instance_buffer(device: &wgpu::Device, capacity: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timeline quads"),
        size: capacity * INSTANCE_SIZE,
        usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

impl QuadResources {
    /// Creates the pipeline; call once when the app starts.
    pub fn install(render_state: &egui_wgpu::RenderState) {
        let device = &render_state.device;
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("timeline quads"),
            source: wgpu::ShaderSource::Wgsl(include_str!("quads.wgsl").into()),
        });
        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("timeline quads"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: NonZeroU64::new(std::mem::size_of::<Globals>() as u64),
                },
                count: None,
            }],
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("timeline quads"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("timeline quads"),
            layout: Some(&layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: INSTANCE_SIZE,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &INSTANCE_ATTRIBUTES,
                })],
            },
            primitive: wgpu::PrimitiveState {
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                ..Default::default()
            },
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some("fs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: render_state.target_format,
                    blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        let globals = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timeline globals"),
            size: std::mem::size_of::<Globals>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("timeline quads"),
            layout: &bind_group_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: globals.as_entire_binding(),
            }],
        });
        let capacity = 4096;
        render_state
            .renderer
            .write()
            .callback_resources
            .insert(QuadResources {
                pipeline,
                globals,
                bind_group,
                instances: instance_buffer(device, capacity),
                capacity,
                count: 0,
            });
    }
}

/// This frame's rectangles.
pub struct QuadsCallback {
    pub instances: Arc<[QuadInstance]>,
}

impl egui_wgpu::CallbackTrait for QuadsCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(r) = resources.get_mut::<QuadResources>() else {
            return Vec::new();
        };
        let n = self.instances.len() as u64;
        if n > r.capacity {
            r.capacity = n.next_power_of_two();
            r.instances = instance_buffer(device, r.capacity);
        }
        if n > 0 {
            queue.write_buffer(&r.instances, 0, bytemuck::cast_slice(&self.instances[..]));
        }
        r.count = n as u32;
        let ppp = screen.pixels_per_point;
        let globals = Globals {
            screen_size_points: [
                screen.size_in_pixels[0] as f32 / ppp,
                screen.size_in_pixels[1] as f32 / ppp,
            ],
            _pad: [0.0; 2],
        };
        queue.write_buffer(&r.globals, 0, bytemuck::bytes_of(&globals));
        Vec::new()
    }

    fn paint(
        &self,
        info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(r) = resources.get::<QuadResources>() else {
            return;
        };
        if r.count == 0 {
            return;
        }
        let [w, h] = info.screen_size_px;
        // Instances are in screen coordinates: use the whole screen, the scissor clips.
        render_pass.set_viewport(0.0, 0.0, w as f32, h as f32, 0.0, 1.0);
        render_pass.set_pipeline(&r.pipeline);
        render_pass.set_bind_group(0, &r.bind_group, &[]);
        render_pass.set_vertex_buffer(0, r.instances.slice(..u64::from(r.count) * INSTANCE_SIZE));
        render_pass.draw(0..4, 0..r.count);
    }
}
