//! The `tweedie` binary.

mod cli;

fn main() {
    if let Err(err) = cli::main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
