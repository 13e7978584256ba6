//! The trajectory panel's paths, computed on the CPU backend through the trainer's optimizer
//! code (`trace::run_trace`). Each path is kept by its spec, so that moving one arm's slider
//! recomputes only that arm, and moving it back recomputes nothing.

use burn::tensor::Device;

use crate::trace::{TraceSpec, run_trace};

/// Paths kept.
const KEPT: usize = 64;

type Path = Result<Vec<[f64; 2]>, String>;

#[derive(Default)]
pub struct Cache {
    /// Oldest first.
    paths: Vec<(TraceSpec, Path)>,
}

impl Cache {
    /// Each spec's path: its start, then the point after every step.
    pub fn paths(&mut self, specs: &[TraceSpec]) -> Vec<Path> {
        specs.iter().map(|spec| self.path(spec)).collect()
    }

    fn path(&mut self, spec: &TraceSpec) -> Path {
        if let Some((_, path)) = self.paths.iter().find(|(key, _)| key == spec) {
            return path.clone();
        }
        let path = run_trace(spec, &Device::flex().autodiff())
            .map(|rows| {
                std::iter::once(spec.start)
                    .chain(rows.iter().map(|r| [r.x, r.y]))
                    .collect()
            })
            .map_err(|e| e.to_string());
        if self.paths.len() >= KEPT {
            drop(self.paths.remove(0));
        }
        self.paths.push((spec.clone(), path.clone()));
        path
    }
}
