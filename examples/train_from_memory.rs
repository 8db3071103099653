//! Train a score model with a low-rank + diagonal second-order head on points you already hold in
//! memory, keep a checkpoint, and read the learned scores back:
//! `cargo run --release --example train_from_memory`.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use tweedie::linalg::Mat;
use tweedie::models::SecondOrderHead;
use tweedie::train::{Checkpoint, TrainConfig, TrainObserver, TrainStep, Trainer};

/// Prints the loss every 500 steps.
struct PrintLoss;

impl TrainObserver for PrintLoss {
    fn on_step(&mut self, step: &TrainStep) {
        if step.step.is_multiple_of(500) {
            println!("step {:>5}  loss {:.4}", step.step, step.loss);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 5000 points on a noisy ring in 8 dimensions: two coordinates on a circle, six of small noise.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let points = Mat::from_fn(5000, 8, |_, j| {
        let z: f64 = StandardNormal.sample(&mut rng);
        match j {
            0 => 2.0 * (z * 3.0).cos(),
            1 => 2.0 * (z * 3.0).sin(),
            _ => 0.2 * z,
        }
    });
    let config = TrainConfig {
        s2: SecondOrderHead::LowRank { rank: 3 },
        sigma: 0.3,
        steps: 3000,
        batch: 256,
        width: 64,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::from_points(config, points.clone())?;
    let out = std::env::temp_dir().join("tweedie_train_from_memory.safetensors");
    trainer.run(Some(&out), &mut PrintLoss)?;
    println!("checkpoint: {}", out.display());

    // The checkpoint holds everything to evaluate, or to resume on the same points.
    let checkpoint = Checkpoint::load(&out)?;
    let model = checkpoint.eval_model();
    let x = points.slice_rows(0, 3).cast::<f32>();
    let s1 = model.score(&x);
    for i in 0..3 {
        println!("s1 at point {i}: {:?}", &s1.row(i)[..2]);
    }
    let resumed = Trainer::resume_with_points(checkpoint, Some(3500), points)?;
    println!("resumable from step {} of {}", resumed.state().step, resumed.state().config.steps);
    Ok(())
}
