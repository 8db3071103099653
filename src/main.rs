//! The `tweedie` binary: the command line of [`tweedie::cli`] with one-line errors.

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

/// Rust ignores SIGPIPE, so printing into a closed pipe (`tweedie data list | head -3`) would panic;
/// the default action ends the process quietly, as other command-line tools do.
#[cfg(unix)]
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: called once at start-up, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_sigpipe() {}

fn main() {
    restore_sigpipe();
    if let Err(err) = tweedie::cli::main() {
        eprintln!("error: {}", one_line(&err));
        std::process::exit(1);
    }
}
