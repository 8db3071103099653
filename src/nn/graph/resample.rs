//! Halving and doubling the resolution of channels-last images: 2x2 average pooling and 2x nearest
//! upsampling. Both are linear, so primal and tangent rows go through the same map, and the reverse
//! of each is the transpose of the other (up to the factor 1/4).

use super::cotangent::{put, InputCotangent};
use super::shape::Shape;
use crate::linalg::{Mat, Real};

/// Calls `visit(fine_offset, coarse_offset)` for the channel run of every fine pixel of every row:
/// fine pixel `(y, x)` of a `2h x 2w` image lies in coarse pixel `(y / 2, x / 2)` of an `h x w` one.
fn for_each_pair(coarse: Shape, rows: usize, mut visit: impl FnMut(usize, usize)) {
    let (c, fine_w) = (coarse.channels, 2 * coarse.width);
    for r in 0..rows {
        let (fine_row, coarse_row) = (r * 4 * coarse.len(), r * coarse.len());
        for y in 0..2 * coarse.height {
            for x in 0..fine_w {
                visit(fine_row + (y * fine_w + x) * c, coarse_row + ((y / 2) * coarse.width + x / 2) * c);
            }
        }
    }
}

/// 2x2 average pooling, `y[i, j] = (x[2i, 2j] + x[2i, 2j+1] + x[2i+1, 2j] + x[2i+1, 2j+1]) / 4`, of an
/// image with even sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool {
    /// Shape of the input image (even height and width).
    pub input: Shape,
}

impl AvgPool {
    /// Shape of the output image.
    pub fn output(&self) -> Shape {
        Shape::new(self.input.height / 2, self.input.width / 2, self.input.channels)
    }

    /// Pools every stacked row.
    pub fn forward<F: Real>(&self, x: &Mat<F>, y: &mut Mat<F>) {
        let (out, quarter) = (self.output(), F::of(0.25));
        y.resize(x.rows(), out.len());
        y.fill_zero();
        let (xs, ys) = (x.as_slice(), y.as_mut_slice());
        for_each_pair(out, x.rows(), |fine, coarse| {
            let run = &mut ys[coarse..coarse + out.channels];
            run.iter_mut().zip(&xs[fine..fine + out.channels]).for_each(|(y, x)| *y += quarter * *x);
        });
    }

    /// `g_x (+)= g_y / 4` on each of the four pooled pixels (each input pixel is in one pool).
    pub fn reverse<F: Real>(&self, g_y: &Mat<F>, g_x: InputCotangent<'_, F>) {
        let (out, quarter, fresh) = (self.output(), F::of(0.25), g_x.fresh);
        let (gy, gx) = (g_y.as_slice(), g_x.g.as_mut_slice());
        for_each_pair(out, g_y.rows(), |fine, coarse| {
            let run = &mut gx[fine..fine + out.channels];
            put(fresh, run, &gy[coarse..coarse + out.channels], |g| quarter * g);
        });
    }
}

/// 2x nearest-neighbour upsampling, `y[i, j] = x[i / 2, j / 2]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upsample {
    /// Shape of the input image.
    pub input: Shape,
}

impl Upsample {
    /// Shape of the output image.
    pub fn output(&self) -> Shape {
        Shape::new(2 * self.input.height, 2 * self.input.width, self.input.channels)
    }

    /// Upsamples every stacked row.
    pub fn forward<F: Real>(&self, x: &Mat<F>, y: &mut Mat<F>) {
        let c = self.input.channels;
        y.resize(x.rows(), self.output().len());
        let (xs, ys) = (x.as_slice(), y.as_mut_slice());
        for_each_pair(self.input, x.rows(), |fine, coarse| {
            ys[fine..fine + c].copy_from_slice(&xs[coarse..coarse + c]);
        });
    }

    /// `g_x += ` the sum of `g_y` over the four copies of each pixel.
    pub fn reverse<F: Real>(&self, g_y: &Mat<F>, g_x: &mut Mat<F>) {
        let c = self.input.channels;
        let (gy, gx) = (g_y.as_slice(), g_x.as_mut_slice());
        for_each_pair(self.input, g_y.rows(), |fine, coarse| {
            gx[coarse..coarse + c].iter_mut().zip(&gy[fine..fine + c]).for_each(|(gx, g)| *gx += *g);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::graph::network::{check_against_finite_differences, GraphBuilder};
    use crate::testing::test_rng;

    #[test]
    fn values_on_a_small_image() {
        // A 2x4 image with 2 channels: channel 0 counts pixels, channel 1 is minus that.
        let x = Mat::from_fn(1, 16, |_, j| if j % 2 == 0 { (j / 2) as f64 } else { -((j / 2) as f64) });
        let mut pooled = Mat::default();
        AvgPool { input: Shape::new(2, 4, 2) }.forward(&x, &mut pooled);
        // Pixels 0, 1, 4, 5 and 2, 3, 6, 7.
        assert_eq!(pooled.as_slice(), &[2.5, -2.5, 4.5, -4.5]);
        let mut up = Mat::default();
        Upsample { input: Shape::new(1, 2, 2) }.forward(&pooled, &mut up);
        let want = [2.5, -2.5, 2.5, -2.5, 4.5, -4.5, 4.5, -4.5];
        assert_eq!(&up.as_slice()[..8], &want);
        assert_eq!(&up.as_slice()[8..], &want);
    }

    #[test]
    fn tangent_and_reverse_match_finite_differences() {
        let mut rng = test_rng(11);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(4, 2, 3), &mut rng);
        let x = b.input();
        let pooled = b.avg_pool(x).expect("even sides");
        let up = b.upsample(pooled);
        // A nonlinearity between, so the map is not its own linearisation.
        b.act(up, crate::nn::Activation::Tanh);
        check_against_finite_differences(&b.finish(), 2, 1, 12);
    }
}
