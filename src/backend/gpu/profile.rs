//! Where GPU time goes, on any adapter: per kernel, the dispatches, the
//! workgroups and invocations launched, the longest serial loop of one
//! invocation, the bytes read and written, and the GPU time from timestamp
//! queries where the device writes them.
//!
//! The counts come from each dispatch's `Cost`, which its caller (`ops`)
//! computes from the shapes. They do not depend on the adapter, so a software
//! adapter (lavapipe) shows a kernel that would crawl on a GPU: a GPU runs
//! thousands of invocations at once, each one slowly, so an invocation that
//! adds 40,000 terms one after another, or a dispatch of one workgroup, leaves
//! it idle whatever its clock (see `../shared/GPU.md`).

use std::collections::HashMap;

/// What one dispatch does, as its caller knows it from the shapes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// The longest loop of one invocation: the elements it reads or the terms
    /// it accumulates one after another (1 for an elementwise kernel).
    pub serial: u64,
    /// Elements (4 bytes each) read from storage, by all invocations together.
    pub read: u64,
    /// Elements written to storage.
    pub written: u64,
}

impl Cost {
    /// An elementwise kernel over `n` outputs reading `inputs` elements per output.
    pub fn elementwise(n: usize, inputs: usize) -> Cost {
        Cost { serial: 1, read: (n * inputs) as u64, written: n as u64 }
    }

    /// `serial` terms per invocation, `read` and `written` elements in all.
    pub fn new(serial: usize, read: usize, written: usize) -> Cost {
        Cost { serial: serial as u64, read: read as u64, written: written as u64 }
    }
}

/// One kernel's share of a profile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KernelProfile {
    pub kernel: &'static str,
    pub dispatches: u64,
    pub workgroups: u64,
    /// Invocations launched (workgroups × the kernel's workgroup size).
    pub invocations: u64,
    /// The longest serial loop of one invocation, over all its dispatches.
    pub serial: u64,
    /// Bytes read and written from storage.
    pub read_bytes: u64,
    pub written_bytes: u64,
    /// GPU time in seconds (timestamp queries), or wall time of the kernel run
    /// alone natively where the device has no timestamps; `None` in the
    /// browser, which profiles the counts only.
    pub seconds: Option<f64>,
    /// The shapes of the dispatch with the longest serial loop (its cost).
    pub worst: Cost,
}

/// Dispatches timed per submission (two timestamps each; wgpu allows 4,096
/// queries per set).
const TIMED_DISPATCHES: u32 = 1024;

/// Timestamp queries around every compute pass.
pub(crate) struct Timer {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period: f64,
    /// The kernel of each pass recorded since the last submission.
    pending: Vec<&'static str>,
}

impl Timer {
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Timer {
        let bytes = u64::from(TIMED_DISPATCHES) * 16;
        Timer {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: TIMED_DISPATCHES * 2,
            }),
            resolved: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile timestamps"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            readback: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            period: f64::from(queue.get_timestamp_period()),
            pending: Vec::new(),
        }
    }
}

pub(crate) struct Profile {
    kernels: HashMap<&'static str, KernelProfile>,
    /// Threads per workgroup of each kernel, read from its WGSL.
    threads: HashMap<&'static str, u64>,
    timer: Option<Timer>,
}

/// The product of a kernel's `@workgroup_size(x, y, z)`.
fn workgroup_threads(body: &str) -> u64 {
    let Some(at) = body.find("@workgroup_size(") else { return 1 };
    let rest = &body[at + "@workgroup_size(".len()..];
    let args = &rest[..rest.find(')').unwrap_or(0)];
    args.split(',').filter_map(|a| a.trim().parse::<u64>().ok()).product()
}

impl Profile {
    pub(crate) fn new(timer: Option<Timer>) -> Profile {
        Profile { kernels: HashMap::new(), threads: HashMap::new(), timer }
    }

    /// Whether dispatches get GPU timestamps.
    pub(crate) fn timed(&self) -> bool {
        self.timer.is_some()
    }

    /// Whether the query set is full (the caller submits first).
    pub(crate) fn timer_full(&self) -> bool {
        self.timer.as_ref().is_some_and(|t| t.pending.len() as u32 >= TIMED_DISPATCHES)
    }

    /// Counts one dispatch; where timed, the timestamp writes for its pass.
    pub(crate) fn record(
        &mut self,
        kernel: &'static str,
        body: &str,
        groups: [u32; 3],
        cost: Cost,
    ) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let threads = *self.threads.entry(kernel).or_insert_with(|| workgroup_threads(body));
        let workgroups = groups.iter().map(|&g| u64::from(g)).product::<u64>();
        let k = self.kernels.entry(kernel).or_insert_with(|| KernelProfile { kernel, ..Default::default() });
        k.dispatches += 1;
        k.workgroups += workgroups;
        k.invocations += workgroups * threads;
        k.read_bytes += cost.read * 4;
        k.written_bytes += cost.written * 4;
        if cost.serial >= k.serial {
            k.serial = cost.serial;
            k.worst = cost;
        }
        let timer = self.timer.as_mut()?;
        let slot = timer.pending.len() as u32;
        timer.pending.push(kernel);
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &timer.queries,
            beginning_of_pass_write_index: Some(2 * slot),
            end_of_pass_write_index: Some(2 * slot + 1),
        })
    }

    /// Adds wall time to a kernel (the untimed native fallback).
    pub(crate) fn add_seconds(&mut self, kernel: &'static str, secs: f64) {
        if let Some(k) = self.kernels.get_mut(kernel) {
            *k.seconds.get_or_insert(0.0) += secs;
        }
    }

    /// Before a submission: copies the timestamps recorded since the last one
    /// to the readback buffer; returns the kernels they belong to.
    pub(crate) fn resolve(&mut self, enc: &mut wgpu::CommandEncoder) -> Option<Vec<&'static str>> {
        let timer = self.timer.as_mut()?;
        if timer.pending.is_empty() {
            return None;
        }
        let n = timer.pending.len() as u32;
        enc.resolve_query_set(&timer.queries, 0..2 * n, &timer.resolved, 0);
        enc.copy_buffer_to_buffer(&timer.resolved, 0, &timer.readback, 0, u64::from(n) * 16);
        Some(std::mem::take(&mut timer.pending))
    }

    /// After the submission: waits for it and adds each pass's time to its kernel.
    pub(crate) fn read_timings(&mut self, device: &wgpu::Device, kernels: Vec<&'static str>) {
        let Some(timer) = self.timer.as_ref() else { return };
        let bytes = kernels.len() as u64 * 16;
        let slice = timer.readback.slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        let _ = device.poll(wgpu::PollType::wait_indefinitely());
        if !matches!(rx.recv(), Ok(Ok(()))) {
            return;
        }
        let ticks: Vec<u64> = match slice.get_mapped_range() {
            Ok(view) => bytemuck::cast_slice(&view).to_vec(),
            Err(_) => return,
        };
        timer.readback.unmap();
        let period = timer.period;
        for (kernel, pair) in kernels.into_iter().zip(ticks.chunks_exact(2)) {
            let secs = pair[1].saturating_sub(pair[0]) as f64 * period * 1e-9;
            self.add_seconds(kernel, secs);
        }
    }

    /// Every kernel, the slowest first (by time where timed, else by bytes moved).
    pub(crate) fn finish(self) -> Vec<KernelProfile> {
        let mut v: Vec<KernelProfile> = self.kernels.into_values().collect();
        v.sort_by(|a, b| {
            b.seconds
                .unwrap_or(0.0)
                .total_cmp(&a.seconds.unwrap_or(0.0))
                .then((b.read_bytes + b.written_bytes).cmp(&(a.read_bytes + a.written_bytes)))
                .then(a.kernel.cmp(b.kernel))
        });
        v
    }
}

/// The profile of `steps` training steps as a table, per step, slowest first:
/// kernel, dispatches, workgroups, invocations, longest serial loop, MB read
/// and written, and ms of GPU time (or `-` where not timed).
pub fn table(kernels: &[KernelProfile], steps: usize) -> String {
    let steps = steps.max(1) as f64;
    let per = |v: u64| v as f64 / steps;
    let mut out = format!(
        "{:<22} {:>10} {:>11} {:>13} {:>8} {:>9} {:>9} {:>9}\n",
        "kernel", "dispatches", "workgroups", "invocations", "serial", "MB read", "MB write", "ms"
    );
    let mut total = 0.0;
    for k in kernels {
        let ms = k.seconds.map(|s| s * 1e3 / steps);
        total += ms.unwrap_or(0.0);
        out.push_str(&format!(
            "{:<22} {:>10.0} {:>11.0} {:>13.0} {:>8} {:>9.2} {:>9.2} {:>9}\n",
            k.kernel,
            per(k.dispatches),
            per(k.workgroups),
            per(k.invocations),
            k.serial,
            per(k.read_bytes) / 1e6,
            per(k.written_bytes) / 1e6,
            ms.map_or("-".to_string(), |m| format!("{m:.3}")),
        ));
    }
    if kernels.iter().any(|k| k.seconds.is_some()) {
        out.push_str(&format!("{:<22} {:>83.3}\n", "total", total));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workgroup_size_is_read_from_the_wgsl() {
        assert_eq!(workgroup_threads("@compute @workgroup_size(16, 16)\nfn main()"), 256);
        assert_eq!(workgroup_threads("@compute @workgroup_size(64)\nfn main()"), 64);
        assert_eq!(workgroup_threads("fn main()"), 1);
    }
}
