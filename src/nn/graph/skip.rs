//! Skip connections: the sum of two equally shaped images and the concatenation of their channels.
//! Both are linear, so primal and tangent rows go through the same map.

use super::cotangent::{put, InputCotangent};
use super::shape::Shape;
use crate::linalg::{Mat, Real};

/// `y = a + b`.
pub fn add_forward<F: Real>(a: &Mat<F>, b: &Mat<F>, y: &mut Mat<F>) {
    y.resize(a.rows(), a.cols());
    for ((y, a), b) in y.as_mut_slice().iter_mut().zip(a.as_slice()).zip(b.as_slice()) {
        *y = *a + *b;
    }
}

/// Channel concatenation: every pixel of `y` holds the channels of `a`, then those of `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concat {
    /// Shape of the first input.
    pub left: Shape,
    /// Channels of the second input (same height and width).
    pub right_channels: usize,
}

impl Concat {
    /// Shape of the output image.
    pub fn output(&self) -> Shape {
        self.left.with_channels(self.left.channels + self.right_channels)
    }

    /// Interleaves the channel runs of `a` and `b` pixel by pixel.
    pub fn forward<F: Real>(&self, a: &Mat<F>, b: &Mat<F>, y: &mut Mat<F>) {
        let (ca, cb) = (self.left.channels, self.right_channels);
        y.resize(a.rows(), self.output().len());
        let runs = y.as_mut_slice().chunks_exact_mut(ca + cb);
        for ((out, a), b) in runs.zip(a.as_slice().chunks_exact(ca)).zip(b.as_slice().chunks_exact(cb)) {
            out[..ca].copy_from_slice(a);
            out[ca..].copy_from_slice(b);
        }
    }

    /// Splits `g_y` back: `g_a (+)= ` its first channels, `g_b (+)= ` the rest (either when asked).
    pub fn reverse<F: Real>(
        &self,
        g_y: &Mat<F>,
        g_a: Option<InputCotangent<'_, F>>,
        g_b: Option<InputCotangent<'_, F>>,
    ) {
        let (ca, cb) = (self.left.channels, self.right_channels);
        let runs = || g_y.as_slice().chunks_exact(ca + cb);
        if let Some(InputCotangent { g, fresh }) = g_a {
            for (g, run) in g.as_mut_slice().chunks_exact_mut(ca).zip(runs()) {
                put(fresh, g, &run[..ca], |v| v);
            }
        }
        if let Some(InputCotangent { g, fresh }) = g_b {
            for (g, run) in g.as_mut_slice().chunks_exact_mut(cb).zip(runs()) {
                put(fresh, g, &run[ca..], |v| v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::graph::network::{check_against_finite_differences, GraphBuilder};
    use crate::nn::Activation;
    use crate::testing::test_rng;

    #[test]
    fn concat_interleaves_channel_runs() {
        let a = Mat::from_vec(1, 4, vec![1.0, 2.0, 3.0, 4.0]);
        let b = Mat::from_vec(1, 2, vec![-1.0, -2.0]);
        let mut y = Mat::default();
        Concat { left: Shape::new(1, 2, 2), right_channels: 1 }.forward(&a, &b, &mut y);
        assert_eq!(y.as_slice(), &[1.0, 2.0, -1.0, 3.0, 4.0, -2.0]);
    }

    #[test]
    fn tangent_and_reverse_match_finite_differences() {
        let mut rng = test_rng(13);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(2, 2, 2), &mut rng);
        let x = b.input();
        let a = b.act(x, Activation::Tanh);
        let wide = b.concat(a, x).expect("same pixels");
        let c = b.conv2d("mix", wide, 2, 1, 1).expect("valid conv");
        let sum = b.add(c, a).expect("equal shapes");
        b.act(sum, Activation::Silu);
        check_against_finite_differences(&b.finish(), 2, 2, 14);
    }
}
