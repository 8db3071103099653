//! Times one forward + reverse step of an MNIST-size U-Net (28x28x1, channels 32,64,128, one block per
//! level, 8 groups, SiLU, s1 only, batch 64, no tangent rows) in f32 on the current rayon pool:
//! `RAYON_NUM_THREADS=1 cargo run --release --example unet_step [steps] [blocks]`.

use std::time::Instant;
use tweedie::linalg::Mat;
use tweedie::nn::graph::{GraphTrace, SecondOrderMaps, Shape, UNetConfig};
use tweedie::nn::Activation;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let steps = args.next().transpose()?.unwrap_or(10);
    let blocks = args.next().transpose()?.unwrap_or(1);
    let config = UNetConfig {
        image: Shape::new(28, 28, 1),
        channels: vec![32, 64, 128],
        blocks,
        groups: 8,
        activation: Activation::Silu,
        frequencies: 4,
        second_order: SecondOrderMaps::None,
    };
    let mut rng = rand::rng();
    let net = config.build::<f32, _>(&mut rng)?;
    let batch = 64;
    let x = Mat::from_fn(batch, 784, |i, j| ((i * 31 + j * 7) % 17) as f32 / 17.0);
    let g_out = Mat::from_fn(batch, 784, |i, j| ((i + j) % 5) as f32 - 2.0);
    let log_sigma = vec![0.5f32.ln(); batch];
    let (mut trace, mut grad) = (GraphTrace::default(), vec![0.0f32; net.params().len()]);
    let mut step = || {
        net.forward(&x, batch, &log_sigma, &mut trace);
        grad.iter_mut().for_each(|g| *g = 0.0);
        net.reverse(&mut trace, &g_out, &mut grad, None);
    };
    step();
    let start = Instant::now();
    for _ in 0..steps {
        step();
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / steps as f64;
    let threads = rayon::current_num_threads();
    println!("U-Net {} params, batch {batch}, {threads} thread(s): {ms:.1} ms per step", net.params().len());
    Ok(())
}
