//! How the channels-last output maps of an image network are read as `s1` and as a second-order head's
//! raw outputs, and how their cotangents are written back.
//!
//! At pixel `p` (of `H W`) with `C` image channels and `M` maps, value `j = p C + c` of the image has
//! `s1_j = out[p M + c]`; the head's maps follow the `C` score maps, `R + 1` per channel (`R = 0` for a
//! diagonal head): `U_{j k} = out[p M + C + c (R + 1) + k]` (`k < R`) and `d_j = out[p M + C + c (R + 1) + R]`.
//! The raw head row is laid out as [`crate::models::SecondOrderHead`] reads it: `U` row-major
//! (`D x R`), then `d`.

use super::SecondOrderHead;
use crate::linalg::Real;
use crate::nn::graph::Shape;

/// Offsets of `s1` and of a head's maps in one output row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MapLayout {
    pixels: usize,
    channels: usize,
    maps: usize,
    rank: usize,
}

impl MapLayout {
    /// The layout of `maps` output maps over `image`, for `head` (its rank; the score maps alone read the
    /// same for any head).
    pub(crate) fn new(image: Shape, maps: usize, head: SecondOrderHead) -> Self {
        Self { pixels: image.height * image.width, channels: image.channels, maps, rank: head.rank() }
    }

    /// Output index of value `j`'s head map `k` (`k = R` is the diagonal).
    fn head_index(&self, j: usize, k: usize) -> usize {
        let (p, c) = (j / self.channels, j % self.channels);
        p * self.maps + self.channels + c * (self.rank + 1) + k
    }

    /// Output index of `s1_j`.
    fn s1_index(&self, j: usize) -> usize {
        (j / self.channels) * self.maps + j % self.channels
    }

    fn dim(&self) -> usize {
        self.pixels * self.channels
    }

    /// Copies `s1` out of one output row.
    pub(crate) fn read_s1<F: Real>(&self, out: &[F], s1: &mut [F]) {
        for (j, s) in s1.iter_mut().enumerate() {
            *s = out[self.s1_index(j)];
        }
    }

    /// Copies the raw head values out of one output row.
    pub(crate) fn read_head<F: Real>(&self, out: &[F], raw: &mut [F]) {
        let (dim, r) = (self.dim(), self.rank);
        let (u, d) = raw.split_at_mut(dim * r);
        for j in 0..dim {
            for k in 0..r {
                u[j * r + k] = out[self.head_index(j, k)];
            }
            d[j] = out[self.head_index(j, r)];
        }
    }

    /// Writes `g_s1` into the cotangent row of the output (other entries untouched).
    pub(crate) fn write_s1<F: Real>(&self, g_s1: &[F], g_out: &mut [F]) {
        for (j, g) in g_s1.iter().enumerate() {
            g_out[self.s1_index(j)] = *g;
        }
    }

    /// Writes the raw head's cotangent into the cotangent row of the output (other entries untouched).
    pub(crate) fn write_head<F: Real>(&self, g_raw: &[F], g_out: &mut [F]) {
        let (dim, r) = (self.dim(), self.rank);
        let (u, d) = g_raw.split_at(dim * r);
        for j in 0..dim {
            for k in 0..r {
                g_out[self.head_index(j, k)] = u[j * r + k];
            }
            g_out[self.head_index(j, r)] = d[j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_write_are_inverse_and_tile_the_maps() {
        // 2x1 image, 2 channels, rank 2: maps per pixel 2 + 2 (2 + 1) = 8, every output entry used once.
        let layout = MapLayout::new(Shape::new(2, 1, 2), 8, SecondOrderHead::LowRank { rank: 2 });
        let out: Vec<f64> = (0..16).map(f64::from).collect();
        let (mut s1, mut raw) = (vec![0.0; 4], vec![0.0; 12]);
        layout.read_s1(&out, &mut s1);
        layout.read_head(&out, &mut raw);
        assert_eq!(s1, [0.0, 1.0, 8.0, 9.0]);
        // U rows j = 0..4 (pixel 0 channel 0, pixel 0 channel 1, ...), then d.
        assert_eq!(raw, [2.0, 3.0, 5.0, 6.0, 10.0, 11.0, 13.0, 14.0, 4.0, 7.0, 12.0, 15.0]);
        let mut back = vec![f64::NAN; 16];
        layout.write_s1(&s1, &mut back);
        layout.write_head(&raw, &mut back);
        assert_eq!(back, out);
    }
}
