//! Adam, as `torch.optim.Adam` computes it (no weight decay, no amsgrad), over one flat buffer.
//!
//! With `t` the step number counted from 1:
//! `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
//! `p ← p − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps)`.

pub use crate::ops::adam::AdamStep;

crate::multiversion! {
    /// One Adam step over every element (one vectorised pass; the same bits on every CPU).
    pub fn adam_update(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], hp: AdamStep) {
        let (c1, c2) = hp.corrections();
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = hp.beta1 * *m + (1.0 - hp.beta1) * g;
            *v = hp.beta2 * *v + (1.0 - hp.beta2) * g * g;
            let m_hat = *m / c1;
            let v_hat = *v / c2;
            *p -= hp.lr * m_hat / (v_hat.sqrt() + hp.eps);
        }
    }
}
