//! The registry of training objectives: every objective's name, its parameters and their validation,
//! the kinds of model it trains, and the random draws a step needs, in one place. A training step
//! dispatches on [`Objective`] with exhaustive `match`es (`train/step.rs` for score networks,
//! `train/energy_step.rs` for energy models), so a new variant here makes the compiler list every place
//! that must handle it. The losses themselves are the sibling modules (docs/math.md §3, §4 and §6).

use super::{D2smForm, ObjectiveError, Projection};
use crate::models::ModelKind;

/// The default FD-SSM step `eps` (whitened data has unit scale; the bias of FD-SSM is `O(eps^2)`).
pub const DEFAULT_FD_EPS: f64 = 0.1;

/// What a training step minimises.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Objective {
    /// First-order DSM on `s1` (docs/math.md §3).
    Dsm,
    /// First-order DSM with the control variate at the clean point (DSM-VR).
    DsmVr,
    /// Joint first- and second-order: `loss = weight * L1vr / sigma^2 + L2(form)` (docs/math.md §4);
    /// trains a score network with a second-order head.
    SecondOrder {
        /// The D2SM form.
        form: D2smForm,
        /// The weight `w` of the first-order term.
        weight: f64,
        /// The weight `lambda >= 0` of the consistency coupling
        /// `lambda mean ||S2(x~) v - J_s1(x~) v||^2` (docs/math.md §4.5); 0 turns it off.
        couple: f64,
        /// Also train the third-order network by sliced D3SM (docs/math.md §4.6) on random unit
        /// directions, with `s1` and `S2` detached inside its target (`--model s1s2s3`).
        third_order: bool,
    },
    /// A score-matching objective on `x~ = x + sigma z` (`sigma = 0`: the data itself).
    ScoreMatching(ScoreMatching),
}

/// The score-matching objectives (docs/math.md §6), which differentiate the score along directions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScoreMatching {
    /// Sliced score matching with `projections` directions per point.
    Ssm {
        /// Directions per point `M >= 1`.
        projections: usize,
        /// The distribution of the directions.
        projection: Projection,
        /// SSM-VR: `(v^T s)^2 / 2` replaced by `||s||^2 / 2`.
        variance_reduced: bool,
    },
    /// Exact score matching (Hyvarinen): `D` derivative passes per point.
    Esm,
    /// Finite-difference SSM (Pang et al. 2020) with step `eps`.
    FdSsm {
        /// The finite-difference step `eps > 0` (the length of `v`).
        eps: f64,
    },
}

/// The first-order objectives by their command-line names (the objective of `--model s1` or
/// `--model energy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ObjectiveName {
    /// Denoising score matching.
    Dsm,
    /// DSM with the control variate at the clean point.
    DsmVr,
    /// Sliced score matching (`projections` directions per point).
    Ssm,
    /// SSM with `(v^T s)^2` replaced by `||s||^2`.
    SsmVr,
    /// Exact score matching (`D` tangent passes).
    Esm,
    /// Finite-difference SSM with step `fd_eps`.
    FdSsm,
}

impl ObjectiveName {
    /// The command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectiveName::Dsm => "dsm",
            ObjectiveName::DsmVr => "dsm-vr",
            ObjectiveName::Ssm => "ssm",
            ObjectiveName::SsmVr => "ssm-vr",
            ObjectiveName::Esm => "esm",
            ObjectiveName::FdSsm => "fd-ssm",
        }
    }
}

impl Objective {
    /// The objective's name as used on the command line: `d2sm` for the second-order objective, else
    /// its [`ObjectiveName`].
    pub fn name(&self) -> &'static str {
        let name = match *self {
            Objective::SecondOrder { .. } => return "d2sm",
            Objective::Dsm => ObjectiveName::Dsm,
            Objective::DsmVr => ObjectiveName::DsmVr,
            Objective::ScoreMatching(ScoreMatching::Ssm { variance_reduced: false, .. }) => {
                ObjectiveName::Ssm
            }
            Objective::ScoreMatching(ScoreMatching::Ssm { variance_reduced: true, .. }) => {
                ObjectiveName::SsmVr
            }
            Objective::ScoreMatching(ScoreMatching::Esm) => ObjectiveName::Esm,
            Objective::ScoreMatching(ScoreMatching::FdSsm { .. }) => ObjectiveName::FdSsm,
        };
        name.as_str()
    }

    /// The first-order objective `name`, with the SSM options `projections` (`M`) and `projection` and
    /// the FD-SSM step `eps`; options an objective does not use are ignored.
    ///
    /// # Errors
    /// The errors of [`Objective::validate`].
    pub fn first_order(
        name: ObjectiveName,
        projections: usize,
        projection: Projection,
        eps: f64,
    ) -> Result<Self, ObjectiveError> {
        let sliced = |variance_reduced| ScoreMatching::Ssm { projections, projection, variance_reduced };
        let objective = match name {
            ObjectiveName::Dsm => Objective::Dsm,
            ObjectiveName::DsmVr => Objective::DsmVr,
            ObjectiveName::Ssm => Objective::ScoreMatching(sliced(false)),
            ObjectiveName::SsmVr => Objective::ScoreMatching(sliced(true)),
            ObjectiveName::Esm => Objective::ScoreMatching(ScoreMatching::Esm),
            ObjectiveName::FdSsm => Objective::ScoreMatching(ScoreMatching::FdSsm { eps }),
        };
        objective.validate()?;
        Ok(objective)
    }

    /// Checks the objective's own parameters: `M >= 1` for SSM, a finite `eps > 0` for FD-SSM, a finite
    /// coupling weight `lambda >= 0` for D2SM.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        match *self {
            Objective::SecondOrder { couple, .. } if !(couple >= 0.0 && couple.is_finite()) => {
                Err(ObjectiveError::BadCoupling { couple })
            }
            Objective::ScoreMatching(ScoreMatching::Ssm { projections: 0, .. }) => {
                Err(ObjectiveError::ZeroProjections)
            }
            Objective::ScoreMatching(ScoreMatching::FdSsm { eps }) if !(eps > 0.0 && eps.is_finite()) => {
                Err(ObjectiveError::BadStep { eps })
            }
            _ => Ok(()),
        }
    }

    /// Checks that the objective can train a model of kind `kind`: D2SM trains a score network with a
    /// second-order head (`s1s2`); every first-order objective trains a score network alone (`s1`) or an
    /// energy model.
    pub fn check_model(&self, kind: ModelKind) -> Result<(), ObjectiveError> {
        let order = match self {
            Objective::SecondOrder { third_order: true, .. } => 3,
            Objective::SecondOrder { third_order: false, .. } => 2,
            _ => 1,
        };
        match (order, kind) {
            (3, ModelKind::S1s2s3) | (2, ModelKind::S1s2) | (1, ModelKind::S1 | ModelKind::Energy) => Ok(()),
            _ => Err(self.wrong_model(kind)),
        }
    }

    /// The error of this objective given a model of kind `kind` it cannot train.
    pub(crate) fn wrong_model(&self, kind: ModelKind) -> ObjectiveError {
        let expected = match self {
            Objective::SecondOrder { third_order: false, .. } => {
                "s1s2 (a score network with a second-order head)"
            }
            Objective::SecondOrder { third_order: true, .. } => {
                "s1s2s3 (a score network with second- and third-order heads)"
            }
            _ => "s1 or energy",
        };
        ObjectiveError::WrongModel { objective: self.name(), model: kind, expected }
    }

    /// Rows of `D` standard normal draws one step reads for `points` points: `n` for the DSM family and
    /// ESM, `n (1 + M)` for SSM (noise, then `M` blocks of directions), `2n` for FD-SSM; D2SM reads the
    /// noise, then (coupled) the draws of the Rademacher directions `v`, then (third order) the draws of
    /// the unit directions of D3SM.
    pub fn noise_rows(&self, points: usize) -> usize {
        match *self {
            Objective::SecondOrder { couple, third_order, .. } => {
                points * (1 + usize::from(couple > 0.0) + usize::from(third_order))
            }
            Objective::ScoreMatching(ScoreMatching::Ssm { projections, .. }) => points * (1 + projections),
            Objective::ScoreMatching(ScoreMatching::FdSsm { .. }) => 2 * points,
            _ => points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_choices_are_one_line_errors() {
        use ObjectiveName::*;
        for name in [Dsm, DsmVr, Ssm, SsmVr, Esm, FdSsm] {
            let objective = Objective::first_order(name, 2, Projection::Sphere, 0.2).unwrap();
            assert_eq!(objective.name(), name.as_str());
            assert!(
                objective.check_model(ModelKind::Energy).is_ok()
                    && objective.check_model(ModelKind::S1).is_ok()
                    && objective.check_model(ModelKind::S1s2).is_err()
            );
        }
        assert_eq!(
            Objective::first_order(SsmVr, 0, Projection::Gaussian, 0.1),
            Err(ObjectiveError::ZeroProjections)
        );
        let err = Objective::first_order(FdSsm, 1, Projection::Gaussian, -1.0).unwrap_err();
        assert_eq!(err, ObjectiveError::BadStep { eps: -1.0 });
        assert!(Objective::ScoreMatching(ScoreMatching::FdSsm { eps: f64::NAN }).validate().is_err());
        let d2sm = Objective::SecondOrder { form: D2smForm::A, weight: 1.0, couple: 0.0, third_order: false };
        assert_eq!(d2sm.name(), "d2sm");
        let err = d2sm.check_model(ModelKind::Energy).unwrap_err();
        assert!(matches!(err, ObjectiveError::WrongModel { model: ModelKind::Energy, .. }));
        assert!(d2sm.check_model(ModelKind::S1s2).is_ok() && d2sm.check_model(ModelKind::S1).is_err());
        for e in
            [err, ObjectiveError::ZeroProjections, ObjectiveError::UnknownProjection { name: "x".into() }]
        {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        let ssm = Objective::ScoreMatching(ScoreMatching::Ssm {
            projections: 3,
            projection: Projection::Gaussian,
            variance_reduced: false,
        });
        let fd = Objective::ScoreMatching(ScoreMatching::FdSsm { eps: 0.1 });
        let esm = Objective::ScoreMatching(ScoreMatching::Esm);
        assert_eq!((ssm.noise_rows(5), fd.noise_rows(5), esm.noise_rows(5)), (20, 10, 5));
        let coupled =
            Objective::SecondOrder { form: D2smForm::B, weight: 1.0, couple: 0.5, third_order: false };
        assert_eq!((d2sm.noise_rows(5), coupled.noise_rows(5)), (5, 10));
        let third = Objective::SecondOrder { form: D2smForm::B, weight: 1.0, couple: 0.5, third_order: true };
        assert_eq!(third.noise_rows(5), 15, "noise, coupling draws, then D3SM directions");
        assert!(third.check_model(ModelKind::S1s2s3).is_ok() && third.check_model(ModelKind::S1s2).is_err());
        assert!(d2sm.check_model(ModelKind::S1s2s3).is_err());
        for couple in [-1.0, f64::NAN, f64::INFINITY] {
            let err = Objective::SecondOrder { form: D2smForm::B, weight: 1.0, couple, third_order: false }
                .validate()
                .unwrap_err();
            assert!(matches!(err, ObjectiveError::BadCoupling { .. }), "{couple}: {err:?}");
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("--couple {couple} ")) && !message.contains('\n'),
                "{message}"
            );
        }
    }
}
