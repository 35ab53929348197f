//! The GPU backend: the engine's primitives as WGSL compute kernels run through
//! wgpu (WebGPU in the browser; Vulkan, Metal or DX12 natively, lavapipe in CI).
//!
//! - `Gpu` owns the device, a pipeline per kernel (compiled on first use, then
//!   cached), a pool of buffers by size class (a dropped array's buffer is reused
//!   by the next array of that class, so a training step allocates nothing after
//!   the first), and one command encoder that records kernels until something
//!   must be read back or the step ends.
//! - `GpuArray` is a strided view of a pooled buffer: reshapes, permutes and
//!   slices are views; kernels that need contiguous input copy first.
//! - Kernel parameters go into one uniform arena per submission, written just
//!   before it is submitted.
//!
//! Nothing is read back except what a caller asks for (`read`, `read_words`):
//! training reads the loss, the number of right predictions and a finiteness
//! count in one small readback per step.

pub mod kernels;
mod ops;
pub mod params;
pub mod profile;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

pub use ops::*;
pub use profile::{Cost, KernelProfile};

use kernels::{AnyKernel, Kernel};
use params::Params;

/// Bytes of parameters one dispatch may use (the `Params` block in WGSL).
const PARAM_BYTES: usize = 128;
/// Room in the uniform arena: dispatches per submission.
const ARENA_SLOTS: usize = 2048;

/// Counters for checking that steady-state training compiles and allocates
/// nothing and reads back only its metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Compute pipelines compiled (one per kernel used).
    pub pipelines: usize,
    /// Buffers created for arrays (the pool reuses them).
    pub buffers: usize,
    pub dispatches: u64,
    pub submits: u64,
    /// Readbacks to the CPU and the bytes they moved.
    pub readbacks: u64,
    pub readback_bytes: u64,
    /// Uploads from the CPU (batches, labels, constants).
    pub uploads: u64,
}

struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    /// Parameters of the dispatches recorded so far, one aligned slot each.
    params: Vec<u8>,
    arena: wgpu::Buffer,
}

/// What failed on the GPU (an uncaptured validation error or a lost device).
type Failure = Arc<Mutex<Option<String>>>;

pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// The adapter's name and kind, as shown in the page's backend selector.
    pub adapter: String,
    slot: usize,
    max_binding: u64,
    pipelines: RefCell<HashMap<&'static str, Rc<(wgpu::ComputePipeline, wgpu::BindGroupLayout)>>>,
    pool: RefCell<HashMap<u64, Vec<wgpu::Buffer>>>,
    rec: RefCell<Recorder>,
    stats: Cell<GpuStats>,
    failure: Failure,
    /// Which shapes of kernels run (see `Tuning`).
    tuning: Cell<Tuning>,
    /// What each kernel did, when profiling (`start_profile`).
    profile: RefCell<Option<profile::Profile>>,
    /// Whether the device writes timestamps (`wgpu::Features::TIMESTAMP_QUERY`).
    timestamps: bool,
}

/// A pooled buffer; back to the pool when the last array using it is dropped.
pub struct Buffer {
    raw: Option<wgpu::Buffer>,
    class: u64,
    gpu: Rc<Gpu>,
}

impl Buffer {
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        self.raw.as_ref().expect("a live buffer")
    }
    pub fn gpu(&self) -> &Rc<Gpu> {
        &self.gpu
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            self.gpu.pool.borrow_mut().entry(self.class).or_default().push(raw);
        }
    }
}

/// An f32 array on the GPU: a strided view (element strides and offset) of a buffer.
#[derive(Clone)]
pub struct GpuArray {
    pub(crate) buf: Rc<Buffer>,
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
    pub offset: usize,
}

/// Row-major strides of `shape`.
pub fn standard_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

impl GpuArray {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn gpu(&self) -> &Rc<Gpu> {
        &self.buf.gpu
    }
    /// Contiguous, row-major, from the start of its buffer.
    pub fn is_standard(&self) -> bool {
        self.offset == 0
            && self
                .shape
                .iter()
                .zip(&self.strides)
                .zip(standard_strides(&self.shape))
                .all(|((&d, &s), t)| d <= 1 || s == t)
    }
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        self.buf.raw()
    }
}

/// Which shapes of kernels run, by the adapter's type (tests run both):
/// - `Gpu`: thousands of invocations side by side, each slow: GEMMs tiled
///   through workgroup memory (64 x 64, or 16 x 16 for thin products) and
///   split along K until hundreds of workgroups run; sums as workgroup trees
///   unless the outputs alone fill the GPU.
/// - `Software` (lavapipe, SwiftShader: a workgroup's invocations are SIMD
///   lanes on a few CPU cores, and barriers cost): the register-blocked GEMM
///   (`GEMM_SIMD`), split only where K is over 4,096; sums of up to 4,096
///   terms one thread per output.
///
/// Either way no invocation of a W1, W2 or W3 training step loops over more
/// than 4,096 elements (the structural guard in `tests/gpu.rs` checks both);
/// row kernels (softmax, cross-entropy) loop over their row, at most 4,096
/// classes (`MAX_VOCAB`) or a hidden softmax's width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tuning {
    Gpu,
    Software,
}

/// Why the GPU backend could not start or went away.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuError(pub String);

impl std::fmt::Display for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Gpu {
    /// Finds an adapter and opens a device on it. Fails with a readable reason
    /// where there is none (no WebGPU in this browser, no Vulkan driver, ...).
    pub async fn new() -> Result<Rc<Gpu>, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError(format!("no GPU adapter: {e}")))?;
        let info = adapter.get_info();
        #[cfg(target_arch = "wasm32")]
        let name = if info.name.is_empty() {
            web_adapter_name().await.unwrap_or_else(|| "a WebGPU adapter".into())
        } else {
            info.name.clone()
        };
        #[cfg(not(target_arch = "wasm32"))]
        let name =
            if info.name.is_empty() { format!("{:#x}:{:#x}", info.vendor, info.device) } else { info.name.clone() };
        let kind = match info.device_type {
            wgpu::DeviceType::Cpu => " (software)",
            wgpu::DeviceType::IntegratedGpu => " (integrated)",
            wgpu::DeviceType::DiscreteGpu => " (discrete)",
            _ => "",
        };
        let adapter_name = format!("{name}{kind}");
        // Ask for the adapter's own storage limits: evaluation batches are large.
        let supported = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: supported.max_storage_buffer_binding_size,
            max_buffer_size: supported.max_buffer_size,
            max_storage_buffers_per_shader_stage: supported.max_storage_buffers_per_shader_stage.min(8),
            ..wgpu::Limits::downlevel_defaults()
        };
        // Timestamps for the profile, natively, where the adapter has them (the
        // browser's are coarse and behind a flag).
        let timestamps =
            cfg!(not(target_arch = "wasm32")) && adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("layerlab"),
                required_limits: limits.clone(),
                required_features: if timestamps { wgpu::Features::TIMESTAMP_QUERY } else { wgpu::Features::empty() },
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError(format!("the GPU {adapter_name} refused a device: {e}")))?;
        let failure: Failure = Arc::new(Mutex::new(None));
        let f = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("GPU error: {e}"));
        }));
        let f = failure.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("the GPU device was lost ({reason:?}): {msg}"));
        });
        let align = limits.min_uniform_buffer_offset_alignment.max(PARAM_BYTES as u32) as usize;
        let arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: (align * ARENA_SLOTS) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let max_binding = (limits.max_storage_buffer_binding_size as u64).min(limits.max_buffer_size);
        Ok(Rc::new(Gpu {
            device,
            queue,
            adapter: adapter_name,
            slot: align,
            max_binding,
            pipelines: RefCell::new(HashMap::new()),
            pool: RefCell::new(HashMap::new()),
            rec: RefCell::new(Recorder { encoder: None, params: Vec::new(), arena }),
            stats: Cell::new(GpuStats::default()),
            failure,
            profile: RefCell::new(None),
            timestamps,
            tuning: Cell::new(if info.device_type == wgpu::DeviceType::Cpu { Tuning::Software } else { Tuning::Gpu }),
        }))
    }

    /// `Gpu::new` for native code (the CLI, tests): blocks until the device is open.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Rc<Gpu>, GpuError> {
        pollster::block_on(Gpu::new())
    }

    /// Starts a profile: from now on every dispatch is counted per kernel
    /// (`KernelProfile`), and timed on the GPU where the device writes
    /// timestamps (natively; every submission then waits for its timings).
    /// Without timestamps, native runs time each kernel alone (submitted and
    /// waited for: the totals are per kernel, the run slower); in the browser
    /// the profile has the counts only.
    pub fn start_profile(&self) {
        self.flush();
        let timer = self.timestamps.then(|| profile::Timer::new(&self.device, &self.queue));
        *self.profile.borrow_mut() = Some(profile::Profile::new(timer));
    }

    /// Ends the profile: every kernel dispatched since `start_profile`, the
    /// slowest first (by GPU time where timed, else by elements moved).
    pub fn take_profile(&self) -> Vec<KernelProfile> {
        self.flush();
        self.profile.borrow_mut().take().map(profile::Profile::finish).unwrap_or_default()
    }

    pub fn tuning(&self) -> Tuning {
        self.tuning.get()
    }
    pub fn set_tuning(&self, t: Tuning) {
        self.tuning.set(t);
    }

    pub fn stats(&self) -> GpuStats {
        self.stats.get()
    }

    fn count(&self, f: impl FnOnce(&mut GpuStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// The first error the device reported (validation error, out of memory,
    /// device lost), if any. Once set, results may be wrong and the caller should
    /// move to the CPU.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Marks the device as failed (tests use it to force the fallback path).
    pub fn fail(&self, why: &str) {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| why.to_string());
    }

    /// The largest array, in elements, one kernel can bind.
    pub fn max_elements(&self) -> usize {
        (self.max_binding / 4) as usize
    }

    fn pipeline(&self, k: &dyn AnyKernel) -> Rc<(wgpu::ComputePipeline, wgpu::BindGroupLayout)> {
        if let Some(p) = self.pipelines.borrow().get(k.name()) {
            return p.clone();
        }
        let desc =
            wgpu::ShaderModuleDescriptor { label: Some(k.name()), source: wgpu::ShaderSource::Wgsl(k.source().into()) };
        let module = self.device.create_shader_module(desc);
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(k.name()),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let layout = pipeline.get_bind_group_layout(0);
        let p = Rc::new((pipeline, layout));
        self.pipelines.borrow_mut().insert(k.name(), p.clone());
        self.count(|s| s.pipelines += 1);
        p
    }

    /// Compiles every kernel now (so a broken kernel shows at start-up, and the
    /// first training step does not pay for compiling).
    pub fn warm_up(&self) {
        for k in kernels::ALL {
            self.pipeline(*k);
        }
    }

    /// A buffer for at least `elements` f32s (or u32s), from the pool if one is free.
    pub(crate) fn buffer(self: &Rc<Self>, elements: usize) -> Rc<Buffer> {
        let bytes = (elements.max(1) * 4) as u64;
        let class = bytes.next_power_of_two().max(256);
        let raw = self.pool.borrow_mut().get_mut(&class).and_then(Vec::pop);
        let raw = raw.unwrap_or_else(|| {
            self.count(|s| s.buffers += 1);
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: class,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        Rc::new(Buffer { raw: Some(raw), class, gpu: self.clone() })
    }

    /// An uninitialised contiguous array.
    pub(crate) fn alloc(self: &Rc<Self>, shape: &[usize]) -> GpuArray {
        let n = shape.iter().product();
        GpuArray { buf: self.buffer(n), shape: shape.to_vec(), strides: standard_strides(shape), offset: 0 }
    }

    fn with_encoder<T>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> T) -> T {
        let mut rec = self.rec.borrow_mut();
        let enc = rec.encoder.get_or_insert_with(|| {
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("layerlab") })
        });
        f(enc)
    }

    /// Uploads `data` into `dst` (in command order, so a pooled buffer that
    /// earlier recorded kernels still read is not overwritten before they run).
    pub(crate) fn upload_words(&self, dst: &wgpu::Buffer, data: &[u8]) {
        use wgpu::util::DeviceExt;
        let mut padded = Vec::new();
        let bytes = if data.len() % 4 == 0 && !data.is_empty() {
            data
        } else {
            padded.extend_from_slice(data);
            padded.resize(data.len().div_ceil(4).max(1) * 4, 0);
            &padded
        };
        let staging = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("upload"),
            contents: bytes,
            usage: wgpu::BufferUsages::COPY_SRC,
        });
        self.with_encoder(|enc| enc.copy_buffer_to_buffer(&staging, 0, dst, 0, bytes.len() as u64));
        self.count(|s| s.uploads += 1);
    }

    pub(crate) fn copy_buffer(
        &self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        bytes: u64,
    ) {
        self.with_encoder(|enc| enc.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, bytes));
    }

    /// Records one kernel: `params` its family's parameters (the uniform
    /// block), `buffers` its storage bindings in order (binding 1, 2, ...),
    /// `groups` the workgroup grid, `cost` what it reads, writes and loops over
    /// (for the profile).
    pub(crate) fn dispatch<P: Params>(
        &self,
        k: &Kernel<P>,
        params: &P,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
        cost: Cost,
    ) {
        if groups.contains(&0) {
            return;
        }
        // A full query set is read out before this dispatch takes a slot.
        if self.profile.borrow().as_ref().is_some_and(profile::Profile::timer_full) {
            self.flush();
        }
        let pipeline = self.pipeline(k);
        if self.rec.borrow().params.len() + self.slot > self.slot * ARENA_SLOTS {
            self.flush();
        }
        let offset = {
            let mut rec = self.rec.borrow_mut();
            let offset = rec.params.len();
            rec.params.extend_from_slice(bytemuck::bytes_of(params));
            rec.params.resize(offset + self.slot, 0);
            offset
        };
        let rec = self.rec.borrow();
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &rec.arena,
                offset: offset as u64,
                size: std::num::NonZeroU64::new(PARAM_BYTES as u64),
            }),
        }];
        entries.extend(
            buffers
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() }),
        );
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(k.name),
            layout: &pipeline.1,
            entries: &entries,
        });
        drop(rec);
        let mut profile = self.profile.borrow_mut();
        let timestamp_writes = profile.as_mut().and_then(|p| p.record(k.name, k.body, groups, cost));
        self.with_encoder(|enc| {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(k.name), timestamp_writes });
            pass.set_pipeline(&pipeline.0);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        });
        let untimed = profile.as_ref().is_some_and(|p| !p.timed());
        drop(profile);
        self.count(|s| s.dispatches += 1);
        #[cfg(not(target_arch = "wasm32"))]
        if untimed {
            let t = web_time::Instant::now();
            self.flush();
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
            if let Some(p) = self.profile.borrow_mut().as_mut() {
                p.add_seconds(k.name, t.elapsed().as_secs_f64());
            }
        }
        #[cfg(target_arch = "wasm32")]
        let _ = untimed;
    }

    /// Submits what has been recorded (the end of a training step, or before a readback).
    pub fn flush(&self) {
        let mut rec = self.rec.borrow_mut();
        let Some(mut enc) = rec.encoder.take() else { return };
        if !rec.params.is_empty() {
            self.queue.write_buffer(&rec.arena, 0, &rec.params);
            rec.params.clear();
        }
        let mut profile = self.profile.borrow_mut();
        let timings = profile.as_mut().and_then(|p| p.resolve(&mut enc));
        self.queue.submit([enc.finish()]);
        self.count(|s| s.submits += 1);
        if let (Some(p), Some(t)) = (profile.as_mut(), timings) {
            p.read_timings(&self.device, t);
        }
    }

    /// Copies `ranges` (buffer, byte offset, bytes) into one staging buffer, submits,
    /// and returns a future of their bytes, in order.
    fn read_ranges(
        &self,
        ranges: &[(&wgpu::Buffer, u64, u64)],
    ) -> (wgpu::Buffer, futures_channel::oneshot::Receiver<Result<(), wgpu::BufferAsyncError>>) {
        let total: u64 = ranges.iter().map(|r| r.2.div_ceil(4) * 4).sum::<u64>().max(4);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: total,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut at = 0;
        for &(buf, off, bytes) in ranges {
            let bytes = bytes.div_ceil(4) * 4;
            self.copy_buffer(buf, off, &staging, at, bytes);
            at += bytes;
        }
        self.flush();
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.count(|s| {
            s.readbacks += 1;
            s.readback_bytes += total;
        });
        (staging, rx)
    }

    async fn finish_read(
        &self,
        staging: wgpu::Buffer,
        rx: futures_channel::oneshot::Receiver<Result<(), wgpu::BufferAsyncError>>,
    ) -> Result<Vec<u8>, GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError(format!("waiting for the GPU failed: {e}")))?;
        // A lost device makes the read fail; its reason says more than the read's.
        let failed = |what: String| GpuError(self.failure().unwrap_or(what));
        let mapped = rx.await.map_err(|_| failed("the GPU readback was cancelled".into()))?;
        mapped.map_err(|e| failed(format!("reading from the GPU failed: {e}")))?;
        if let Some(f) = self.failure() {
            return Err(GpuError(f));
        }
        let bytes = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError(format!("reading from the GPU failed: {e}")))?;
            view.to_vec()
        };
        staging.unmap();
        Ok(bytes)
    }

    /// Reads single 32-bit words (metrics, counters), in one readback.
    pub async fn read_words(&self, words: &[(&wgpu::Buffer, usize)]) -> Result<Vec<u32>, GpuError> {
        let ranges: Vec<_> = words.iter().map(|&(b, i)| (b, (i * 4) as u64, 4u64)).collect();
        let (staging, rx) = self.read_ranges(&ranges);
        let bytes = self.finish_read(staging, rx).await?;
        Ok(bytes.chunks_exact(4).take(words.len()).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// Reads an array back to the CPU, in row-major order.
    pub async fn read(self: &Rc<Self>, a: &GpuArray) -> Result<Vec<f32>, GpuError> {
        let a = contiguous(a);
        let n = a.len();
        let (staging, rx) = self.read_ranges(&[(a.raw(), 0, (n * 4) as u64)]);
        let bytes = self.finish_read(staging, rx).await?;
        Ok(bytes.chunks_exact(4).take(n).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// Reads several arrays back in one readback (a checkpoint: every weight and
    /// optimizer moment), each in row-major order.
    pub async fn read_many(self: &Rc<Self>, arrays: &[&GpuArray]) -> Result<Vec<Vec<f32>>, GpuError> {
        let flat: Vec<GpuArray> = arrays.iter().map(|a| contiguous(a)).collect();
        let ranges: Vec<_> = flat.iter().map(|a| (a.raw(), 0u64, (a.len() * 4) as u64)).collect();
        let (staging, rx) = self.read_ranges(&ranges);
        let bytes = self.finish_read(staging, rx).await?;
        let mut out = Vec::with_capacity(flat.len());
        let mut at = 0;
        for a in &flat {
            let n = a.len();
            out.push(
                bytes[at..at + n * 4].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            );
            at += (n * 4).div_ceil(4) * 4;
        }
        Ok(out)
    }

    /// Destroys the device, as a lost GPU would (for testing the fallback).
    pub fn lose_device(&self) {
        self.device.destroy();
    }

    /// `read` for native code: blocks until the GPU is done.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking(self: &Rc<Self>, a: &GpuArray) -> Result<Vec<f32>, GpuError> {
        pollster::block_on(self.read(a))
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_words_blocking(&self, words: &[(&wgpu::Buffer, usize)]) -> Result<Vec<u32>, GpuError> {
        pollster::block_on(self.read_words(words))
    }

    /// An array holding `data` (row-major `shape`).
    pub fn upload(self: &Rc<Self>, shape: &[usize], data: &[f32]) -> GpuArray {
        let a = self.alloc(shape);
        self.upload_words(a.raw(), bytemuck::cast_slice(data));
        a
    }

    /// A u32 buffer holding `data` (labels, ids).
    pub fn upload_u32(self: &Rc<Self>, data: &[u32]) -> Rc<Buffer> {
        let b = self.buffer(data.len());
        self.upload_words(b.raw(), bytemuck::cast_slice(data));
        b
    }
}

/// The browser's own words for its adapter (`GPUAdapterInfo`: vendor,
/// architecture, description), which wgpu does not pass on.
#[cfg(target_arch = "wasm32")]
async fn web_adapter_name() -> Option<String> {
    use js_sys::Reflect;
    use wasm_bindgen::JsCast;
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let gpu = Reflect::get(&navigator, &"gpu".into()).ok().filter(|g| !g.is_undefined())?;
    let request: js_sys::Function = Reflect::get(&gpu, &"requestAdapter".into()).ok()?.dyn_into().ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok().filter(|a| !a.is_null())?;
    let info = Reflect::get(&adapter, &"info".into()).ok()?;
    let field = |k: &str| Reflect::get(&info, &k.into()).ok().and_then(|v| v.as_string()).filter(|s| !s.is_empty());
    let parts: Vec<String> =
        [field("vendor"), field("architecture"), field("description")].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// A 2-d workgroup grid for `n` threads in groups of 256 (see `kernels::PRELUDE`).
pub(crate) fn grid(n: usize) -> [u32; 3] {
    workgroups(n.div_ceil(256))
}

/// A 2-d grid of `n` workgroups (one dimension holds at most 65535).
pub(crate) fn workgroups(n: usize) -> [u32; 3] {
    let n = n as u32;
    if n <= 65535 {
        [n, 1, 1]
    } else {
        [65535, n.div_ceil(65535), 1]
    }
}
