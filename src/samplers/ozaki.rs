//! The Ozaki (local linearisation) sampler: the Langevin drift linearised at the current point with the
//! curvature $H = s_2(x)$, and the linear SDE integrated exactly; with full, diagonal or Lanczos
//! (matrix-free, for low-rank plus diagonal $H$) matrix functions.

use super::chains::{ChainOutcome, Chains, StepTotals};
use super::curvature::{CurvatureBatch, CurvatureLayout, CurvatureView};
use super::error::SamplerError;
use super::lanczos::Lanczos;
use super::low_rank_ozaki::LowRankFunctions;
use super::phi::{clip, drift_factor, noise_variance_factor};
use super::sampler::{Sampler, SamplerStep};
use super::source::CurvatureSource;
use super::ula::check_step_size;
use crate::linalg::Mat;
use nalgebra::{DMatrix, SymmetricEigen};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// How the matrix functions $\varphi_1(hH)$ and $(2h\varphi_1(2hH))^{1/2}$ are applied to vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OzakiSolver {
    /// Symmetric eigen-decomposition of the dense $H$ per chain ($O(D^3)$; small $D$). Exact.
    Eigen,
    /// $H$ replaced by its diagonal: everything elementwise ($O(D)$). Exact when $H$ is diagonal.
    Diagonal,
    /// Lanczos on products $H v$ ($O(k D r)$ for low-rank plus diagonal $H$, never `D x D`); clipping
    /// acts on the Ritz values. Exact (to rounding) when `iters >= D`.
    Lanczos {
        /// Maximum Lanczos iterations $k$ per matrix function (at least 1).
        iters: usize,
    },
    /// Thin-factor matrix functions of a low-rank plus diagonal $H$ ($O(D r^2)$, never `D x D`, no
    /// Lanczos): $f$ of $\operatorname{diag}(d)$ off the range of $U$, $f$ of $H$ compressed onto it.
    /// Exact when the range of $U$ is invariant under $\operatorname{diag}(d)$ (a constant diagonal
    /// included); a diagonal or dense $H$ is read as its diagonal with $U = 0$ (exact for diagonal $H$).
    LowRank,
}

/// Settings of [`Ozaki`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OzakiSettings {
    /// Step size $h > 0$ (time units of the diffusion).
    pub step_size: f64,
    /// How matrix functions of $H$ are computed.
    pub solver: OzakiSolver,
    /// Curvature clip $l_{\max}$: eigenvalues of $H$ above it are replaced by it (default 0; `+inf`
    /// disables clipping).
    pub l_max: f64,
}

impl Default for OzakiSettings {
    fn default() -> Self {
        Self { step_size: 0.5, solver: OzakiSolver::Eigen, l_max: 0.0 }
    }
}

impl OzakiSettings {
    pub(crate) fn validate(&self) -> Result<(), SamplerError> {
        check_step_size(self.step_size)?;
        if self.l_max.is_nan() {
            return Err(SamplerError::BadClip { l_max: self.l_max });
        }
        if self.solver == (OzakiSolver::Lanczos { iters: 0 }) {
            return Err(SamplerError::ZeroLanczosIterations);
        }
        Ok(())
    }
}

/// The Ozaki discretisation of Langevin dynamics.
///
/// # Definition
/// With $g = s_1(x)$, $H = s_2(x) = Q \operatorname{diag}(l) Q^\top$ (eigenvalues clipped to
/// $l_i \le l_{\max}$) and $\xi \sim \mathcal N(0, I)$,
/// $$ x' = x + h\ \varphi_1(hH)\  g + \big(2h\ \varphi_1(2hH)\big)^{1/2} \xi, \qquad
///    \varphi_1(A) = (e^A - I) A^{-1}, $$
/// that is, along eigenvector $i$: drift factor $(e^{h l_i} - 1)/l_i$ and noise variance
/// $(e^{2 h l_i} - 1)/l_i$ (limits $h$ and $2h$ at $l_i = 0$). Exact on Gaussian targets for every
/// $h$; where $H$ is clipped it acts like ULA along those directions. Random numbers per chain and step:
/// `D` normals ($\xi$), drawn before anything else, for every solver.
///
/// # Reference
/// docs/math.md §10.3; Ozaki (1992), *Statistica Sinica* 2, 113-135; Shoji & Ozaki (1998); the
/// Hessian-informed sampling experiments of Meng et al. (2021), Sec. 5.
///
/// # Example
/// ```
/// use tweedie::samplers::{run, Chains, Ozaki, OzakiSettings};
/// use tweedie::targets::TargetSpec;
/// let p = "gauss:dim=4,cond=100".parse::<TargetSpec>()?.build();
/// // A step size far beyond ULA's stability limit (2 / 100).
/// let mut oz = Ozaki::new(OzakiSettings { step_size: 5.0, ..Default::default() }, &p)?;
/// let mut chains = Chains::from_normal(16, 4, 3.0, 0)?;
/// let s = run(&mut oz, &mut chains, 3, &mut ());
/// assert_eq!((s.diverged.len(), s.clipped), (0, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Ozaki<'a, S: CurvatureSource + ?Sized> {
    settings: OzakiSettings,
    source: &'a S,
    layout: CurvatureLayout,
    ws: OzakiWorkspace,
}

/// Buffers of an Ozaki step: scores and curvature of all chains.
pub(crate) struct OzakiWorkspace {
    g: Mat<f64>,
    curvature: Option<CurvatureBatch>,
}

impl OzakiWorkspace {
    pub(crate) fn new() -> Self {
        Self { g: Mat::default(), curvature: None }
    }
}

impl<'a, S: CurvatureSource + ?Sized> Ozaki<'a, S> {
    /// Builds the sampler.
    ///
    /// # Errors
    /// [`SamplerError::NonPositiveStepSize`], [`SamplerError::BadClip`] (NaN `l_max`),
    /// [`SamplerError::ZeroLanczosIterations`], [`SamplerError::NoSecondOrderHead`] for a source without
    /// curvature.
    pub fn new(settings: OzakiSettings, source: &'a S) -> Result<Self, SamplerError> {
        settings.validate()?;
        let layout = source.layout().ok_or(SamplerError::NoSecondOrderHead)?;
        Ok(Self { settings, source, layout, ws: OzakiWorkspace::new() })
    }

    /// The settings.
    pub fn settings(&self) -> &OzakiSettings {
        &self.settings
    }
}

/// The next position of one chain: `out = x + h phi1(hH) g + (2h phi1(2hH))^{1/2} xi`.
#[allow(clippy::too_many_arguments)]
fn ozaki_update(
    solver: OzakiSolver,
    h: f64,
    l_max: f64,
    x: &[f64],
    g: &[f64],
    view: CurvatureView<'_>,
    out: &mut [f64],
    rng: &mut ChaCha8Rng,
) -> ChainOutcome {
    let D = x.len();
    let xi: Vec<f64> = (0..D).map(|_| StandardNormal.sample(rng)).collect();
    let mut outcome = ChainOutcome { accepted: true, accept_prob: 1.0, ..Default::default() };
    let mut clipped = |l: f64| {
        let (l, c) = clip(l, l_max);
        outcome.eigenvalues += 1;
        outcome.clipped += usize::from(c);
        l
    };
    match solver {
        OzakiSolver::Eigen => {
            let mut dense = vec![0.0; D * D];
            view.dense_into(&mut dense);
            let eig = SymmetricEigen::new(DMatrix::from_row_slice(D, D, &dense));
            let q = &eig.eigenvectors;
            // Coefficients in the eigenbasis: c_i = drift_i (q_i . g) + sqrt(var_i) (q_i . xi).
            let coef: Vec<f64> = (0..D)
                .map(|i| {
                    let l = clipped(eig.eigenvalues[i]);
                    let (qg, qxi) =
                        (0..D).fold((0.0, 0.0), |(a, b), r| (a + q[(r, i)] * g[r], b + q[(r, i)] * xi[r]));
                    drift_factor(h, l) * qg + noise_variance_factor(h, l).sqrt() * qxi
                })
                .collect();
            for (r, o) in out.iter_mut().enumerate() {
                *o = x[r] + (0..D).map(|i| q[(r, i)] * coef[i]).sum::<f64>();
            }
        }
        OzakiSolver::Diagonal => {
            let mut diag = vec![0.0; D];
            view.diagonal_into(&mut diag);
            for r in 0..D {
                let l = clipped(diag[r]);
                out[r] = x[r] + drift_factor(h, l) * g[r] + noise_variance_factor(h, l).sqrt() * xi[r];
            }
        }
        OzakiSolver::Lanczos { iters } => {
            let drift = Lanczos::new(|u, o| view.matvec(u, o), g, iters);
            let noise = Lanczos::new(|u, o| view.matvec(u, o), &xi, iters);
            drift.ritz_values().iter().chain(noise.ritz_values()).for_each(|&l| {
                clipped(l);
            });
            let mut a = vec![0.0; D];
            drift.apply(|l| drift_factor(h, l.min(l_max)), &mut a);
            noise.apply(|l| noise_variance_factor(h, l.min(l_max)).sqrt(), out);
            for r in 0..D {
                out[r] += x[r] + a[r];
            }
        }
        OzakiSolver::LowRank => {
            let functions = match view {
                CurvatureView::LowRank { u, d, rank } => LowRankFunctions::new(u, d, rank),
                _ => {
                    let mut diag = vec![0.0; D];
                    view.diagonal_into(&mut diag);
                    LowRankFunctions::new(&[], &diag, 0)
                }
            };
            functions.eigenvalues().for_each(|l| {
                clipped(l);
            });
            let mut a = vec![0.0; D];
            functions.apply(|l| drift_factor(h, l.min(l_max)), g, &mut a);
            functions.apply(|l| noise_variance_factor(h, l.min(l_max)).sqrt(), &xi, out);
            for r in 0..D {
                out[r] += x[r] + a[r];
            }
        }
    }
    outcome
}

/// One Ozaki step of every live chain with the scores and curvature (in `layout`) of `source`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ozaki_step<S: CurvatureSource + ?Sized>(
    source: &S,
    layout: CurvatureLayout,
    h: f64,
    solver: OzakiSolver,
    l_max: f64,
    chains: &mut Chains,
    ws: &mut OzakiWorkspace,
) -> StepTotals {
    let (n, d) = (chains.len(), chains.dim());
    ws.g.resize(n, d);
    let curvature = match &mut ws.curvature {
        Some(c) if c.layout() == layout && c.dim() == d => c,
        slot => slot.insert(CurvatureBatch::new(layout, d)),
    };
    source.scores_and_curvature_into(chains.positions(), &mut ws.g, curvature);
    let (g, curvature) = (&ws.g, &*curvature);
    chains.advance(|i, x, out, rng| ozaki_update(solver, h, l_max, x, g.row(i), curvature.chain(i), out, rng))
}

impl<S: CurvatureSource + ?Sized> Sampler for Ozaki<'_, S> {
    #[track_caller]
    fn step(&mut self, chains: &mut Chains) -> SamplerStep {
        assert_eq!(chains.dim(), self.source.dim(), "Ozaki::step: chains and source differ in dimension");
        let OzakiSettings { step_size: h, solver, l_max } = self.settings;
        let t = ozaki_step(self.source, self.layout, h, solver, l_max, chains, &mut self.ws);
        SamplerStep::from_totals(chains.steps(), h, None, t)
    }
}
