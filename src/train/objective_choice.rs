//! Choosing an [`Objective`]: names at the CLI boundary, validation (`M >= 1`, `eps > 0`), which kind of
//! model each objective can train, and how many rows of standard normal draws a step needs.

use super::step::Objective;
use crate::models::ModelKind;
use crate::objectives::{ObjectiveError, Projection};

/// The default FD-SSM step `eps` (whitened data has unit scale; the bias of FD-SSM is `O(eps^2)`).
pub const DEFAULT_FD_EPS: f64 = 0.1;

impl Objective {
    /// The objective's name as used on the command line: `dsm`, `dsm-vr`, `d2sm`, `ssm`, `ssm-vr`,
    /// `esm`, `fd-ssm`.
    pub fn name(&self) -> &'static str {
        match self {
            Objective::Dsm => "dsm",
            Objective::DsmVr => "dsm-vr",
            Objective::SecondOrder { .. } => "d2sm",
            Objective::Ssm { variance_reduced: false, .. } => "ssm",
            Objective::Ssm { variance_reduced: true, .. } => "ssm-vr",
            Objective::Esm => "esm",
            Objective::FdSsm { .. } => "fd-ssm",
        }
    }

    /// Builds a first-order objective from its command-line name (`dsm`, `dsm-vr`, `ssm`, `ssm-vr`,
    /// `esm`, `fd-ssm`; `_` may stand for `-`), with the SSM options `projections` (`M`) and
    /// `projection`, and the FD-SSM step `eps`; options an objective does not use are ignored.
    ///
    /// # Errors
    /// [`ObjectiveError::UnknownObjective`] for another name, and the errors of [`Objective::validate`].
    ///
    /// # Example
    /// ```
    /// use tweedie::objectives::{ObjectiveError, Projection};
    /// use tweedie::train::Objective;
    /// let ssm = Objective::from_name("ssm-vr", 1, Projection::Gaussian, 0.1)?;
    /// assert_eq!(ssm, Objective::Ssm { projections: 1, projection: Projection::Gaussian, variance_reduced: true });
    /// assert_eq!(Objective::from_name("ssm", 0, Projection::Gaussian, 0.1), Err(ObjectiveError::ZeroProjections));
    /// # Ok::<(), ObjectiveError>(())
    /// ```
    pub fn from_name(
        name: &str,
        projections: usize,
        projection: Projection,
        eps: f64,
    ) -> Result<Self, ObjectiveError> {
        let objective = match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "dsm" => Objective::Dsm,
            "dsm-vr" => Objective::DsmVr,
            "ssm" => Objective::Ssm { projections, projection, variance_reduced: false },
            "ssm-vr" => Objective::Ssm { projections, projection, variance_reduced: true },
            "esm" => Objective::Esm,
            "fd-ssm" => Objective::FdSsm { eps },
            _ => return Err(ObjectiveError::UnknownObjective { name: name.to_string() }),
        };
        objective.validate()?;
        Ok(objective)
    }

    /// Checks the objective's own parameters: `M >= 1` for SSM, a finite `eps > 0` for FD-SSM.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        match *self {
            Objective::Ssm { projections: 0, .. } => Err(ObjectiveError::ZeroProjections),
            Objective::FdSsm { eps } if !(eps > 0.0 && eps.is_finite()) => {
                Err(ObjectiveError::BadStep { eps })
            }
            _ => Ok(()),
        }
    }

    /// Checks that the objective can train a model of kind `kind`: D2SM trains a score network with a
    /// second-order head (`s1s2`); every first-order objective trains a score network alone (`s1`) or an
    /// energy model.
    pub fn check_model(&self, kind: ModelKind) -> Result<(), ObjectiveError> {
        let second_order = matches!(self, Objective::SecondOrder { .. });
        match (second_order, kind) {
            (true, ModelKind::S1s2) | (false, ModelKind::S1 | ModelKind::Energy) => Ok(()),
            (true, _) => Err(ObjectiveError::WrongModel {
                objective: self.name(),
                model: kind,
                expected: "s1s2 (a score network with a second-order head)",
            }),
            (false, _) => Err(ObjectiveError::WrongModel {
                objective: self.name(),
                model: kind,
                expected: "s1 or energy",
            }),
        }
    }

    /// Rows of `D` standard normal draws one step reads for `points` points (the `z` of
    /// [`loss_and_gradient`](super::loss_and_gradient) and
    /// [`energy_loss_and_gradient`](super::energy_loss_and_gradient)): `n` for the DSM family and ESM,
    /// `n (1 + M)` for SSM (noise, then `M` blocks of directions), `2n` for FD-SSM.
    pub fn noise_rows(&self, points: usize) -> usize {
        match *self {
            Objective::Ssm { projections, .. } => points * (1 + projections),
            Objective::FdSsm { .. } => 2 * points,
            _ => points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_choices_are_one_line_errors() {
        for name in ["dsm", "dsm-vr", "ssm", "ssm-vr", "esm", "fd-ssm"] {
            let objective = Objective::from_name(name, 2, Projection::Sphere, 0.2).unwrap();
            assert_eq!(objective.name(), name);
            assert!(
                objective.check_model(ModelKind::Energy).is_ok()
                    && objective.check_model(ModelKind::S1).is_ok()
                    && objective.check_model(ModelKind::S1s2).is_err()
            );
        }
        let err = Objective::from_name("sliced", 1, Projection::Gaussian, 0.1).unwrap_err();
        assert!(matches!(err, ObjectiveError::UnknownObjective { ref name } if name == "sliced"));
        assert_eq!(
            Objective::from_name("ssm-vr", 0, Projection::Gaussian, 0.1),
            Err(ObjectiveError::ZeroProjections)
        );
        let err = Objective::from_name("fd_ssm", 1, Projection::Gaussian, -1.0).unwrap_err();
        assert_eq!(err, ObjectiveError::BadStep { eps: -1.0 });
        assert!(Objective::FdSsm { eps: f64::NAN }.validate().is_err());
        let d2sm = Objective::SecondOrder { form: crate::objectives::D2smForm::A, weight: 1.0 };
        let err = d2sm.check_model(ModelKind::Energy).unwrap_err();
        assert!(matches!(err, ObjectiveError::WrongModel { model: ModelKind::Energy, .. }));
        assert!(d2sm.check_model(ModelKind::S1s2).is_ok() && d2sm.check_model(ModelKind::S1).is_err());
        for e in
            [err, ObjectiveError::ZeroProjections, ObjectiveError::UnknownProjection { name: "x".into() }]
        {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        let ssm =
            Objective::Ssm { projections: 3, projection: Projection::Gaussian, variance_reduced: false };
        assert_eq!(
            (ssm.noise_rows(5), Objective::FdSsm { eps: 0.1 }.noise_rows(5), Objective::Esm.noise_rows(5)),
            (20, 10, 5)
        );
        let json = serde_json::to_string(&ssm).unwrap();
        assert_eq!(serde_json::from_str::<Objective>(&json).unwrap(), ssm, "{json}");
    }
}
