//! Training recovers analytic truth: on a Gaussian target, s2 of q_sigma is the constant -(Sigma +
//! sigma^2 I)^{-1} and s1 is linear; every head and form must learn them to within a few percent.

use tweedie::evaluation::ScoreReport;
use tweedie::models::{ModelKind, SecondOrderHead};
use tweedie::train::{FormName, TrainConfig, Trainer};

fn train_and_score(s2: SecondOrderHead, form: FormName, vr: bool) -> (f64, f64) {
    let config = TrainConfig {
        target: "gauss:dim=3,cond=4,seed=2".into(),
        model: ModelKind::S1s2,
        s2,
        form,
        vr,
        sigma: 0.5,
        steps: 1500,
        batch: 256,
        width: 32,
        learning_rate: 3e-3,
        ema: 0.99,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, &tweedie::data::DataDir::resolve(None)).unwrap();
    trainer.run(None, &mut ()).unwrap();
    let model = trainer.state().eval_model();
    let target = trainer.target().unwrap().clone();
    let report = ScoreReport::evaluate(&model, &target, 0.5, 2000, 9).unwrap();
    (report.s1_rel_err, report.s2_rel_err.unwrap())
}

#[test]
fn every_head_and_form_recovers_the_gaussian_hessian() {
    let cases = [
        (SecondOrderHead::Full, FormName::B, false),
        (SecondOrderHead::Full, FormName::A, false),
        (SecondOrderHead::Full, FormName::A, true),
        (SecondOrderHead::Diagonal, FormName::B, false),
        (SecondOrderHead::LowRank { rank: 3 }, FormName::A, true),
    ];
    for (head, form, vr) in cases {
        let (s1, s2) = train_and_score(head, form, vr);
        eprintln!("{head} {form:?} vr={vr}: s1 {s1:.4} s2 {s2:.4}");
        // An untrained network has errors of order 1; the runs reach s1 <= 0.026 and s2 <= 0.066.
        assert!(s1 < 0.06, "{head} {form:?} vr={vr}: rel_err(s1) = {s1}");
        assert!(s2 < 0.10, "{head} {form:?} vr={vr}: rel_err(s2) = {s2}");
    }
}
