//! The `tweedie` binary.

mod cli;

/// The error and its causes on one line, skipping causes a message already quotes.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

fn main() {
    if let Err(err) = cli::main() {
        eprintln!("error: {}", one_line(&err));
        std::process::exit(1);
    }
}
