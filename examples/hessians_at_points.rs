//! Hessians of log q_sigma at your own points from a trained model: the learned second-order head
//! against the autodiff route (the symmetrised Jacobian of the learned score) and the exact Hessian
//! of the mixture it was trained on: `cargo run --release --example hessians_at_points`.

use rand::SeedableRng;
use tweedie::evaluation::relative_error;
use tweedie::linalg::Mat;
use tweedie::models::SecondOrderHead;
use tweedie::targets::{ScoreHessian, TargetSpec};
use tweedie::train::{TrainConfig, Trainer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sigma = 0.3;
    let target = "gmm:dim=4,components=3,seed=11";
    let config = TrainConfig {
        target: target.into(),
        s2: SecondOrderHead::Full,
        sigma,
        steps: 4000,
        batch: 256,
        width: 64,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config, &tweedie::data::DataDir::resolve(None))?;
    trainer.run(None, &mut ())?;
    let model = trainer.model();
    let score_model = model.as_score().ok_or("a score model")?;

    // Your points as an N x D matrix: here 500 draws of q_sigma, where the model saw its data (far from
    // the data both estimates are poor).
    let noisy = target.parse::<TargetSpec>()?.build().noisy(sigma)?;
    let x: Mat<f64> = noisy.sample(500, &mut rand_chacha::ChaCha8Rng::seed_from_u64(5));
    let learned = score_model.hessian_dense(&x.cast::<f32>()).ok_or("a second-order head")?;
    let autodiff = score_model.cast::<f64>().hessian_autodiff(&x);
    let exact = noisy.hessians(&x);
    let learned: Vec<f64> = learned.iter().map(|&v| v as f64).collect();
    println!("relative error of the Hessian at {} points:", x.rows());
    println!("  learned s2 head       {:.3}", relative_error(&learned, exact.as_slice()));
    println!("  autodiff Jacobian(s1) {:.3}", relative_error(&autodiff, exact.as_slice()));
    println!("learned Hessian at the first point, first row: {:?}", &learned[..4]);
    println!("exact                                         : {:?}", &exact[..4]);
    Ok(())
}
