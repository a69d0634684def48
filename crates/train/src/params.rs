//! Parameter bookkeeping for the optimiser: stable parameter ids, which parameters are
//! vectors (not decayed), and the global gradient-norm clip.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// Gives every parameter an id derived from its path in the module tree, so that optimiser
/// state saved by one process matches the parameters another process loads.
pub(crate) struct StableIds {
    pub(crate) path: Vec<String>,
}

impl ModuleMapper for StableIds {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        // FNV-1a of the path: stable across processes and platforms.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.path.join(".").bytes() {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        let (_, tensor, mapper) = param.consume();
        Param::from_mapped_value(ParamId::from(hash), tensor, mapper)
    }
}

/// Collects the ids of parameters with fewer than two dimensions (not weight-decayed).
#[derive(Default)]
pub(crate) struct VectorParams {
    pub(crate) ids: Vec<ParamId>,
}

impl ModuleVisitor for VectorParams {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if D < 2 {
            self.ids.push(param.id);
        }
    }
}

/// Sums the squares of every gradient.
pub(crate) struct GradNorm<'a> {
    pub(crate) grads: &'a GradientsParams,
    sum: f64,
}

impl ModuleVisitor for GradNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            self.sum += grad.square().sum().into_scalar::<f32>() as f64;
        }
    }
}

/// Multiplies every gradient by a factor.
pub(crate) struct ScaleGrads<'a> {
    pub(crate) grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for ScaleGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads
                .register::<D>(param.id, grad.mul_scalar(self.factor));
        }
    }
}

/// Rescales the gradients so that their global L2 norm is at most `max_norm`; returns the norm
/// before clipping.
pub(crate) fn clip_global_norm<M: Module>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: Option<f32>,
) -> f32 {
    let mut norm = GradNorm { grads, sum: 0.0 };
    model.visit(&mut norm);
    let total = norm.sum.sqrt();
    if let Some(max) = max_norm {
        if total > max as f64 && total.is_finite() {
            model.visit(&mut ScaleGrads {
                grads,
                factor: max as f64 / (total + 1e-6),
            });
        }
    }
    total as f32
}
