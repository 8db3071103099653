//! An image score model: a U-Net (a network graph, docs/math.md §8) over channels-last images whose first `C` output maps are
//! `s1` (one per image channel), optionally with a second-order head `S2` read from further output maps
//! of the same network (shared layout) or of a second U-Net (separate layout), evaluated at one fixed
//! noise level, the training `sigma`.

use super::image_maps::MapLayout;
use super::{NoiseSchedule, SecondOrderHead};
use crate::linalg::{Mat, Real};
use crate::nn::graph::{Graph, GraphError, GraphTrace, SecondOrderMaps, UNetConfig};
use crate::objectives::s2_diagonal_of_log_link;
use rand::Rng;

/// Where the second-order head's maps come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum HeadLayout {
    /// Extra output maps of the `s1` network (one backbone for both).
    Shared,
    /// A second U-Net of the same sizes whose output maps beyond the first `C` are the head (the
    /// default: on MNIST it beat the shared layout on both held-out PSNR and D2SM loss, README).
    #[default]
    Separate,
}

/// How a head's diagonal map `m` is read as the diagonal `d` of `S2 = U U^T + diag(d)` at noise level
/// `sigma`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum DiagonalLink {
    /// `d = m` (D2SM forms A and B).
    #[default]
    Identity,
    /// `d = (exp(m) - 1) / sigma^2`, so that the posterior covariance's diagonal part
    /// `sigma^4 d + sigma^2 = sigma^2 exp(m)` is positive (the likelihood fit, docs/math.md §4.7).
    Log,
}

/// The second-order head of an image model.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ImageSecondOrder<F> {
    /// How the maps are read as `S2`: [`SecondOrderHead::Diagonal`] or [`SecondOrderHead::LowRank`].
    pub(crate) head: SecondOrderHead,
    /// How the diagonal map is read.
    pub(crate) link: DiagonalLink,
    /// The separate network (parameters `s2.` + its paths), or `None` when the maps are on `net`.
    pub(crate) net: Option<Graph<F>>,
}

/// A single-sigma U-Net score model.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageScoreModel<F> {
    /// The architecture of the `s1` network (its second-order maps are the head's in the shared layout).
    pub(crate) unet: UNetConfig,
    /// The noise level of a single-sigma model (the training `sigma`), or the largest level of the
    /// schedule; the level [`ImageScoreModel::score`] conditions on.
    pub sigma: f64,
    /// The levels of a noise-conditional model (`None`: trained at `sigma` alone).
    pub schedule: Option<NoiseSchedule>,
    /// The network; its parameters are named `s1.` + the graph's paths in checkpoints.
    pub(crate) net: Graph<F>,
    /// The second-order head, if any.
    pub(crate) s2: Option<ImageSecondOrder<F>>,
}

/// The output maps per channel that carry `head` (diagonal: 1; low rank `R`: `R + 1`).
pub(crate) fn head_maps(head: SecondOrderHead) -> SecondOrderMaps {
    match head {
        SecondOrderHead::LowRank { rank } => SecondOrderMaps::LowRank(rank),
        _ => SecondOrderMaps::Diagonal,
    }
}

impl<F: Real> ImageScoreModel<F> {
    /// A freshly initialised model with the score maps alone (`unet.second_order` is ignored).
    ///
    /// # Errors
    /// Sizes the U-Net cannot take (see [`UNetConfig::build`]).
    pub(crate) fn init<R: Rng + ?Sized>(
        unet: &UNetConfig,
        sigma: f64,
        rng: &mut R,
    ) -> Result<Self, GraphError> {
        let unet = UNetConfig { second_order: SecondOrderMaps::None, ..unet.clone() };
        Ok(Self { net: unet.build(rng)?, unet, sigma, schedule: None, s2: None })
    }

    /// A freshly initialised model with a second-order head (diagonal or low rank) in `layout`.
    ///
    /// # Errors
    /// Sizes the U-Net cannot take (see [`UNetConfig::build`]).
    pub(crate) fn init_with_head<R: Rng + ?Sized>(
        unet: &UNetConfig,
        sigma: f64,
        head: SecondOrderHead,
        layout: HeadLayout,
        rng: &mut R,
    ) -> Result<Self, GraphError> {
        let with_maps = UNetConfig { second_order: head_maps(head), ..unet.clone() };
        Ok(match layout {
            HeadLayout::Shared => Self {
                net: with_maps.build(rng)?,
                unet: with_maps,
                sigma,
                schedule: None,
                s2: Some(ImageSecondOrder { head, link: DiagonalLink::Identity, net: None }),
            },
            HeadLayout::Separate => {
                let mut model = Self::init(unet, sigma, rng)?;
                model.s2 = Some(ImageSecondOrder {
                    head,
                    link: DiagonalLink::Identity,
                    net: Some(with_maps.build(rng)?),
                });
                model
            }
        })
    }

    /// The same model with its head's diagonal read through `link` (no effect without a head).
    pub(crate) fn with_diagonal_link(mut self, link: DiagonalLink) -> Self {
        if let Some(s2) = self.s2.as_mut() {
            s2.link = link;
        }
        self
    }

    /// The same model trained over `schedule` (conditioned on its largest level by default).
    pub fn noise_conditional(self, schedule: NoiseSchedule) -> Self {
        Self { sigma: schedule.hi, schedule: Some(schedule), ..self }
    }

    /// Draws a training noise level for each of `n` rows: uniformly from the schedule, or the model's
    /// single `sigma` (without touching `rng`).
    pub(crate) fn draw_levels<F2: Real, R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Vec<F2> {
        match &self.schedule {
            Some(s) => (0..n).map(|_| F2::of(s.sigma(rng.random_range(0..s.levels)))).collect(),
            None => vec![F2::of(self.sigma); n],
        }
    }

    /// Data dimension: the values of one image.
    pub fn dim(&self) -> usize {
        self.unet.image.len()
    }

    /// The second-order head (diagonal or low rank), if the model has one.
    pub fn second_order_head(&self) -> Option<SecondOrderHead> {
        self.s2.as_ref().map(|s2| s2.head)
    }

    /// The images' `(height, width, channels)`; a point is an image's pixels, channels last.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        let image = self.unet.image;
        (image.height, image.width, image.channels)
    }

    /// Converts the element type.
    pub fn cast<G: Real>(&self) -> ImageScoreModel<G> {
        ImageScoreModel {
            unet: self.unet.clone(),
            sigma: self.sigma,
            schedule: self.schedule,
            net: self.net.cast(),
            s2: self.s2.as_ref().map(|s| ImageSecondOrder {
                head: s.head,
                link: s.link,
                net: s.net.as_ref().map(Graph::cast),
            }),
        }
    }

    /// All parameters: the `s1` network's, then the separate head network's.
    pub fn params(&self) -> Vec<&[F]> {
        let mut all = vec![self.net.params()];
        all.extend(self.s2_net().map(Graph::params));
        all
    }

    /// All parameters, mutably, in the order of [`ImageScoreModel::params`].
    pub fn params_mut(&mut self) -> Vec<&mut [F]> {
        let mut all = vec![self.net.params_mut()];
        all.extend(self.s2.as_mut().and_then(|s| s.net.as_mut()).map(Graph::params_mut));
        all
    }

    /// The separate head network, if the layout has one.
    pub(crate) fn s2_net(&self) -> Option<&Graph<F>> {
        self.s2.as_ref().and_then(|s| s.net.as_ref())
    }

    /// The layout of the head's maps on the network that carries them.
    pub(crate) fn head_layout(&self) -> Option<(SecondOrderHead, MapLayout)> {
        let s2 = self.s2.as_ref()?;
        let carrier = s2.net.as_ref().unwrap_or(&self.net);
        Some((s2.head, MapLayout::new(self.unet.image, carrier.output_shape().channels, s2.head)))
    }

    /// The layout of the `s1` maps on [`ImageScoreModel::net`].
    pub(crate) fn score_layout(&self) -> MapLayout {
        MapLayout::new(self.unet.image, self.net.output_shape().channels, SecondOrderHead::Diagonal)
    }

    /// `s1` at every row of `x` (`N x D`, one image per row) at the model's own noise level.
    pub fn score(&self, x: &Mat<F>) -> Mat<F> {
        self.score_at(x, self.sigma)
    }

    /// `s1` at every row of `x` (`N x D`, one image per row), the network conditioned on `sigma`: the
    /// first `C` maps of the output (the score of the data blurred by `N(0, sigma^2 I)`).
    pub fn score_at(&self, x: &Mat<F>, sigma: f64) -> Mat<F> {
        let n = x.rows();
        let mut s1 = Mat::zeros(n, self.dim());
        if n == 0 {
            return s1;
        }
        let mut trace = GraphTrace::default();
        let out = self.net.forward(x, n, &vec![F::of(sigma.ln()); n], &mut trace);
        let layout = self.score_layout();
        for i in 0..n {
            layout.read_s1(out.row(i), s1.row_mut(i));
        }
        s1
    }

    /// The second-order head at every row of `x`, the network conditioned on `sigma`, as factors of
    /// `S2 = U U^T + diag(d)`: `(U, d)` with `U` an `N x (D R)` matrix (row `i` holds image `i`'s
    /// `D x R` factor, row-major; `R = 0` for a diagonal head) and `d` an `N x D` matrix (the diagonal
    /// map read through the head's link at `sigma`); `None` without a head.
    pub fn second_order_at(&self, x: &Mat<F>, sigma: f64) -> Option<(Mat<F>, Mat<F>)> {
        let (head, layout) = self.head_layout()?;
        let (n, dim) = (x.rows(), self.dim());
        let rank = head.rank();
        let (mut u, mut d) = (Mat::zeros(n, dim * rank), Mat::zeros(n, dim));
        if n == 0 {
            return Some((u, d));
        }
        let carrier = self.s2_net().unwrap_or(&self.net);
        let mut trace = GraphTrace::default();
        let out = carrier.forward(x, n, &vec![F::of(sigma.ln()); n], &mut trace);
        let mut raw = vec![F::zero(); head.outputs(dim)];
        for i in 0..n {
            layout.read_head(out.row(i), &mut raw);
            u.row_mut(i).copy_from_slice(&raw[..dim * rank]);
            d.row_mut(i).copy_from_slice(&raw[dim * rank..]);
        }
        if self.s2.as_ref().is_some_and(|s2| s2.link == DiagonalLink::Log) {
            let read = |m: &mut F| *m = F::of(s2_diagonal_of_log_link(m.to_f64().unwrap_or(f64::NAN), sigma));
            d.as_mut_slice().iter_mut().for_each(read);
        }
        Some((u, d))
    }

    /// The diagonal of the Jacobian of `s1` (conditioned on `sigma`) at every row of `x`, exactly: `D`
    /// Jacobian-vector products with the unit vectors, pushed as tangent rows `chunk` at a time (the
    /// autodiff baseline a learned diagonal is compared with).
    pub(crate) fn jacobian_diagonal(&self, x: &Mat<F>, sigma: f64, chunk: usize) -> Mat<F> {
        let dim = self.dim();
        let layout = self.score_layout();
        let mut diag = Mat::zeros(x.rows(), dim);
        let mut trace = GraphTrace::default();
        let mut s1 = vec![F::zero(); dim];
        let log_sigma = [F::of(sigma.ln())];
        for i in 0..x.rows() {
            for start in (0..dim).step_by(chunk.max(1)) {
                let units = chunk.max(1).min(dim - start);
                let mut stacked = Mat::zeros(1 + units, dim);
                stacked.row_mut(0).copy_from_slice(x.row(i));
                (0..units).for_each(|t| stacked.row_mut(1 + t)[start + t] = F::one());
                let out = self.net.forward(&stacked, 1, &log_sigma, &mut trace);
                for t in 0..units {
                    layout.read_s1(out.row(1 + t), &mut s1);
                    diag.row_mut(i)[start + t] = s1[start + t];
                }
            }
        }
        diag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::graph::Shape;
    use crate::testing::{assert_close, normal_mat, test_rng, tiny_unet};

    #[test]
    fn jacobian_diagonal_matches_finite_differences_of_the_score() {
        // 4x4 images of 2 channels; chunks of 5 tangents do not divide D = 32 (a short last pass).
        let unet = tiny_unet(Shape::new(4, 4, 2));
        let model = ImageScoreModel::<f64>::init(&unet, 0.5, &mut test_rng(50)).unwrap();
        let x = normal_mat(2, 32, &mut test_rng(51));
        let got = model.jacobian_diagonal(&x, 0.3, 5);
        let eps = 1e-6;
        let want = Mat::from_fn(2, 32, |i, j| {
            let at = |sign: f64| {
                let mut p = Mat::from_fn(1, 32, |_, k| x.at(i, k));
                p.row_mut(0)[j] += sign * eps;
                model.score_at(&p, 0.3).at(0, j)
            };
            (at(1.0) - at(-1.0)) / (2.0 * eps)
        });
        assert_close(got.as_slice(), want.as_slice(), 1e-6, "Jacobian diagonal");
    }
}
